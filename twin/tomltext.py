"""Parse TOML text from outside (configurations, scenarios, truth and user files) with every failure a ConfigError.

``tomllib`` fails three ways on hostile text: ``TOMLDecodeError`` for bad syntax, ``ValueError``
for an integer over Python's 4,300-digit ``int()`` limit, and ``RecursionError`` for arrays or
inline tables nested a few hundred deep. Each becomes one :class:`twin.errors.ConfigError` naming
the source, so no reader of TOML shows a traceback.

>>> loads_toml("a = 1", "x.toml")
{'a': 1}
>>> try:
...     loads_toml("a = " + "9" * 5000, "x.toml")
... except ConfigError as exc:
...     print(str(exc)[:54])
x.toml: (top level): not valid TOML: a number too long
"""

from __future__ import annotations

import tomllib
from typing import Any

from twin.errors import ConfigError, Problem

__all__ = ["loads_toml"]


def loads_toml(text: str, source: str) -> dict[str, Any]:
    """The TOML document ``text``; ``ConfigError`` (naming ``source``) when it is not one."""
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        message = f"not valid TOML: {exc}"
    except ValueError as exc:  # not a TOMLDecodeError: an integer over the 4,300-digit conversion limit
        message = f"not valid TOML: a number too long ({exc})"
    except RecursionError:  # tomllib recurses once per nesting level: ~500 levels exhaust the stack
        message = "not valid TOML: arrays or tables nested too deep"
    raise ConfigError(source, [Problem(path="", message=message, has_got=False)])
