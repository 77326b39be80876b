"""Property-based: any mutation of a valid configuration is either accepted or rejected with a
path-named ConfigError, never another exception (no traceback reaches the user)."""

from __future__ import annotations

import tomllib
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectors.config import load_text
from tests.toml_mutation import mutations
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


def mutated() -> st.SearchStrategy[str]:
    return mutations(BASE_DICT, scalars)


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
