"""The one validation mechanism: pydantic models checked into ``twin.errors.Problem``s.

Every input from outside (the plant configuration, scenarios, the dashboard's users, feed records)
is a pydantic model whose validators produce the domain's values; :func:`validate` runs one and
turns a ``ValidationError`` into ``Problem``s located by dotted/indexed path
(``sites[0].timezone``), raised as one ``ConfigError`` (or handed back by :func:`problems`).

Messages: a house validator raises :func:`fail` with the exact text to show (and the value to quote,
or none); pydantic's own errors keep pydantic's text except where a :class:`Wording` names the
house text for the error type (missing and unknown keys, a table that is not one). The wording is
the only thing that differs between inputs, so each input's messages stay as its users know them.

>>> from pydantic import BaseModel, ConfigDict
>>> class Point(BaseModel):
...     model_config = ConfigDict(extra="forbid")
...     x: float
>>> try:
...     validate(Point, {"x": 1, "y": 2}, source="p.toml")
... except ConfigError as exc:
...     print(exc)
p.toml: y: unknown key (got 2)
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, Field, Strict, ValidationError
from pydantic_core import PydanticCustomError

from twin.errors import ConfigError, Problem

__all__ = [
    "PLANT",
    "Id",
    "Int",
    "NonNegative",
    "Num",
    "Positive",
    "Wording",
    "collect",
    "fail",
    "format_loc",
    "out_of_range",
    "problems",
    "validate",
]

M = TypeVar("M", bound=BaseModel)

_PLAIN_KEY = re.compile(r"[A-Za-z0-9_\-]+")  # a key a user can type bare; any other is shown quoted
# The shared field constraints of configuration files. Numbers are strict: "60" (a string) is not a
# number here; 60 and 60.0 are; never NaN or infinite.
Id = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")]
Num = Annotated[float, Strict(), Field(allow_inf_nan=False)]
Int = Annotated[int, Strict()]
Positive = Annotated[float, Strict(), Field(gt=0, allow_inf_nan=False)]
NonNegative = Annotated[float, Strict(), Field(ge=0, allow_inf_nan=False)]

_HOUSE = "twin"  # the error type of :func:`fail`
_NO_GOT = object()


@dataclass(frozen=True, slots=True, kw_only=True)
class Wording:
    """How one kind of input words pydantic's errors (the rest keep pydantic's text).

    ``missing`` may name ``{key}``: the missing key. ``unknown`` may name ``{allowed}``: the keys the
    table takes, sorted. ``types`` maps a pydantic error type (``model_type``, ``list_type``...) to
    the house message (which may name ``{key}``). ``unknown_first`` lists a table's unknown keys
    before its other problems (as a reader meets them, top down).
    """

    missing: str = "required key is missing"
    unknown: str = "unknown key"
    types: Mapping[str, str] = field(default_factory=dict)
    unknown_first: bool = False
    bare_keys: bool = False  # keys shown as written, never quoted (the users file always did)
    dotted_quotes: bool = False  # a quoted key after a dot, ``a[0].['b c']`` (scenarios always did)


PLANT = Wording()


def fail(message: str, got: object = _NO_GOT, *, key: str = "", at: str | None = None,
         has_got: bool = True) -> PydanticCustomError:
    """The error a house validator raises: ``message`` as shown, quoting ``got`` (default: the input).

    ``key`` locates it below the validated value (a model validator's problem with one of its keys);
    ``at`` beside it instead (a check of several keys, run as its own field: the key it is about, or
    ``""`` for the table itself); ``has_got=False`` quotes nothing. Raise it (``raise fail(...)``);
    pydantic collects it with the others.
    """
    return PydanticCustomError(_HOUSE, "{message}", {"message": message, "got": got, "key": key, "at": at,
                                                     "has_got": has_got})


def validate(model: type[M], data: object, *, source: str, context: Any = None, wording: Wording = PLANT,
             prefix: str = "") -> M:
    """``model`` validated from ``data``; ``ConfigError`` naming ``source`` and listing every problem."""
    try:
        return model.model_validate(data, context=context)
    except ValidationError as exc:
        raise ConfigError(source, problems(exc, prefix, wording=wording, model=model)) from None


def out_of_range(checks: Sequence[tuple[str, float, float, float]], prefix: str = "") -> list[Problem]:
    """A problem per ``(name, value, low, high)`` whose value is not within [low, high] (nan never is).

    >>> [str(p) for p in out_of_range((("days", 0.0, 0.5, 90.0), ("every_s", 60.0, 1.0, 3600.0)), "health.")]
    ['health.days: must be 0.5..90 (got 0.0)']
    """
    return [Problem(path=f"{prefix}{name}", message=f"must be {low:g}..{high:g}", got=value)
            for name, value, low, high in checks if not low <= value <= high]


def collect(model: type[M], data: object, into: list[Problem], *, prefix: str = "", context: Any = None,
            wording: Wording = PLANT) -> M | None:
    """``model`` validated from ``data``, or None with its problems appended to ``into`` (one of many parts)."""
    try:
        return model.model_validate(data, context=context)
    except ValidationError as exc:
        into.extend(problems(exc, prefix, wording=wording, model=model))
        return None


def problems(exc: ValidationError, prefix: str = "", *, wording: Wording = PLANT,
             model: type[BaseModel] | None = None) -> list[Problem]:
    """Pydantic's errors as ``Problem``s with dotted/indexed paths and the offending value.

    ``model`` (the validated class) lets an ``unknown`` wording name the keys a table allows.
    """
    errors = exc.errors(include_url=False)
    if wording.unknown_first:
        errors = _unknown_first(errors)
    out = []
    for err in errors:
        kind, where = err["type"], err["loc"]
        ctx = err.get("ctx") or {}
        if kind == _HOUSE and ctx.get("at") is not None:
            where = (*where[:-1], ctx["at"]) if ctx["at"] else where[:-1]
        loc = format_loc(where, prefix, bare=wording.bare_keys, dotted=wording.dotted_quotes)
        if kind == "extra_forbidden":
            message = wording.unknown
            if "{allowed}" in message:
                message = message.format(allowed=", ".join(_allowed(model, err["loc"][:-1])))
            out.append(Problem(path=loc, message=message, got=err.get("input")))
        elif kind == "missing":
            message = wording.missing
            if "{key" in message:
                message = message.format(key=err["loc"][-1])
            out.append(Problem(path=loc, message=message, has_got=False))
        elif kind == _HOUSE:
            if ctx.get("key"):
                loc = f"{loc}.{ctx['key']}" if loc else str(ctx["key"])
            got = ctx.get("got", _NO_GOT)
            if not ctx.get("has_got", True):
                out.append(Problem(path=loc, message=ctx["message"], has_got=False))
            elif got is _NO_GOT:
                out.append(Problem(path=loc, message=ctx["message"], got=_short(err.get("input"))))
            else:
                out.append(Problem(path=loc, message=ctx["message"], got=got))
        elif kind in wording.types:
            message = wording.types[kind].format(key=where[-1] if where else "")
            out.append(Problem(path=loc, message=message, got=err.get("input")))
        else:
            msg = str(err["msg"]).removeprefix("Value error, ")
            if msg.startswith("token: "):  # a model validator's ``ValueError("key: ...")`` is about that key
                loc, msg = (f"{loc}.token" if loc else "token"), msg.removeprefix("token: ")
            out.append(Problem(path=loc, message=msg, got=_short(err.get("input"))))
    return out


def format_loc(loc: tuple[int | str, ...], prefix: str = "", *, bare: bool = False, dotted: bool = False) -> str:
    """A pydantic location as a path: ``sites[0].machines[2].id`` (pydantic's internal steps left out)."""
    out = prefix
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in ("[key]",) or part.startswith(("function-", "tagged-union")):
            continue  # pydantic's internal validator names
        elif bare or _PLAIN_KEY.fullmatch(part):
            out += f".{part}" if out else part
        else:
            dot = "." if dotted and out else ""
            out += f"{dot}[{part!r}]"  # a key a user could not type bare: show it quoted, escapes visible
    return out


def _short(value: object) -> object:
    if isinstance(value, dict):
        return "{" + ", ".join(sorted(map(str, value)))[:80] + "}"
    if isinstance(value, list) and len(value) > 8:
        return f"[list of {len(value)}]"
    return value


def _unknown_first(errors: list[Any]) -> list[Any]:
    """Each table's unknown keys moved before its other problems (pydantic reports them last)."""
    out: list[Any] = []
    for err in errors:
        if err["type"] == "extra_forbidden":
            table = err["loc"][:-1]
            at = next((i for i, e in enumerate(out) if e["loc"][: len(table)] == table
                       and not (e["type"] == "extra_forbidden" and e["loc"][:-1] == table)), len(out))
            out.insert(at, err)
        else:
            out.append(err)
    return out


def _allowed(model: type[BaseModel] | None, loc: tuple[int | str, ...]) -> list[str]:
    """The keys of the model at ``loc`` below ``model`` (its fields' aliases), sorted."""
    current: Any = model
    for part in loc:
        if isinstance(part, int) or current is None:
            continue
        info = current.model_fields.get(part) or next(
            (f for f in current.model_fields.values() if f.alias == part), None)
        current = _model_of(info.annotation) if info is not None else None
    if current is None:
        return []
    keys = (f.alias or name for name, f in current.model_fields.items())
    return sorted(k for k in keys if not k.startswith("\x00"))  # "\x00...": a key only validators fill


def _model_of(annotation: Any) -> type[BaseModel] | None:
    """The model an annotation holds (``Model``, ``list[Model]``, ``tuple[Model, ...]``, ``Model | None``)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        found = _model_of(arg)
        if found is not None:
            return found
    return None
