"""Property-based: any mutation of a valid configuration is either accepted or rejected with a
path-named ConfigError, never another exception (no traceback reaches the user)."""

from __future__ import annotations

import copy
import tomllib
from typing import Any

import tomli_w
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectors.config import load_text
from twin.errors import ConfigError

from .test_config import BASE

BASE_DICT: dict[str, Any] = tomllib.loads(BASE)

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.lists(st.integers(min_value=-5, max_value=5), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(min_value=-3, max_value=3), max_size=2),
)


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix] if prefix else []
    if isinstance(node, dict):
        for k, v in node.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _paths(v, (*prefix, i))
    return out


ALL_PATHS = _paths(BASE_DICT)


def _strip_none(node: Any) -> Any:
    # TOML has no null: drop None values, as a user would by deleting the key
    if isinstance(node, dict):
        return {str(k): _strip_none(v) for k, v in node.items() if v is not None}
    if isinstance(node, list):
        return [_strip_none(v) for v in node if v is not None]
    return node


@st.composite
def mutated(draw: st.DrawFn) -> str:
    doc = copy.deepcopy(BASE_DICT)
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        path = draw(st.sampled_from(ALL_PATHS))
        parent: Any = doc
        try:
            for part in path[:-1]:
                parent = parent[part]
            action = draw(st.sampled_from(["replace", "delete", "add"]))
            if action == "replace":
                parent[path[-1]] = draw(scalars)
            elif action == "delete":
                del parent[path[-1]]
            elif isinstance(parent, dict):
                parent[draw(st.text(min_size=1, max_size=8))] = draw(scalars)
        except (KeyError, IndexError, TypeError):
            continue
    return tomli_w.dumps(_strip_none(doc))


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_mutated_config_is_accepted_or_rejected_with_paths(text: str) -> None:
    try:
        load_text(text, source="fuzz.toml")
    except ConfigError as exc:
        assert exc.problems, "a ConfigError must list at least one problem"
        for line in str(exc).splitlines():
            assert line.startswith("fuzz.toml: ") or line.endswith("problem(s) in fuzz.toml:"), line
        for p in exc.problems:
            assert p.message


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_arbitrary_text_never_raises_anything_else(text: str) -> None:
    try:
        load_text(text, source="junk.toml")
    except ConfigError as exc:
        assert str(exc).startswith(("junk.toml: ", "2", "3", "4", "5", "6", "7", "8", "9", "1"))
