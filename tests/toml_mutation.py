"""A hypothesis strategy shared by the property tests: mutate a valid TOML document at random paths."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import tomli_w
from hypothesis import strategies as st


def paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every key path in a parsed TOML document."""
    out = [prefix] if prefix else []
    if isinstance(node, dict):
        for k, v in node.items():
            out += paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += paths(v, (*prefix, i))
    return out


def strip_none(node: Any) -> Any:
    """TOML has no null: drop None values, as a user would by deleting the key."""
    if isinstance(node, dict):
        return {str(k): strip_none(v) for k, v in node.items() if v is not None}
    if isinstance(node, list):
        return [strip_none(v) for v in node if v is not None]
    return node


def mutations(base: dict[str, Any], scalars: st.SearchStrategy[Any],
              actions: Sequence[str] = ("replace", "delete", "add")) -> st.SearchStrategy[str]:
    """TOML texts made from ``base`` by 1-4 random replacements, deletions, additions (or duplications)."""
    all_paths = paths(base)

    @st.composite
    def mutated(draw: st.DrawFn) -> str:
        doc = copy.deepcopy(base)
        for _ in range(draw(st.integers(min_value=1, max_value=4))):
            path = draw(st.sampled_from(all_paths))
            parent: Any = doc
            try:
                for part in path[:-1]:
                    parent = parent[part]
                action = draw(st.sampled_from(list(actions)))
                if action == "replace":
                    parent[path[-1]] = draw(scalars)
                elif action == "delete":
                    del parent[path[-1]]
                elif action == "duplicate" and isinstance(parent, list):
                    parent.append(copy.deepcopy(parent[path[-1]]))
                elif isinstance(parent, dict):
                    parent[draw(st.text(min_size=1, max_size=8))] = draw(scalars)
            except (KeyError, IndexError, TypeError):
                continue
        return tomli_w.dumps(strip_none(doc))

    return mutated()
