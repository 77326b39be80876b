"""Every module of the product opens with a docstring and declares its public names: ``__all__`` exists, names
only what the module has, and lists every public function and class the module defines (a name it keeps to
itself starts with ``_``).

Read from the source (``ast``), not by importing: importing a dashboard page registers it with Dash.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("twin", "connectors", "dashboard", "app")
MODULES = sorted(p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py"))


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _top_level(tree: ast.Module) -> list[ast.stmt]:
    """The module's top-level statements, those under top-level ``if``/``try``/``with`` blocks included."""
    out: list[ast.stmt] = []
    todo = list(tree.body)
    while todo:
        node = todo.pop(0)
        out.append(node)
        if isinstance(node, ast.If | ast.With):
            todo += node.body + getattr(node, "orelse", [])
        elif isinstance(node, ast.Try):
            todo += node.body + node.orelse + node.finalbody + [s for h in node.handlers for s in h.body]
    return out


def _targets(node: ast.expr) -> list[str]:
    if isinstance(node, ast.Name):
        return [node.id]
    if isinstance(node, ast.Tuple | ast.List):
        return [n for e in node.elts for n in _targets(e)]
    return []


def _assigned(node: ast.stmt) -> list[str]:
    if isinstance(node, ast.Assign):
        return [n for t in node.targets for n in _targets(t)]
    if isinstance(node, ast.AnnAssign):
        return _targets(node.target)
    return []


def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def _declared(path: Path) -> tuple[list[str] | None, set[str], set[str]]:
    """(``__all__`` or None, every name bound at top level, the functions and classes defined here)."""
    tree = _tree(path)
    exported: list[str] | None = None
    bound: set[str] = set()
    defined: set[str] = set()
    for node in _top_level(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            bound.add(node.name)
            defined.add(node.name)
        elif isinstance(node, ast.Assign | ast.AnnAssign | ast.AugAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names = [n for t in targets for n in _targets(t)]
            bound.update(names)
            if "__all__" in names and node.value is not None:
                value = ast.literal_eval(node.value)
                exported = [*(exported or []), *value] if isinstance(node, ast.AugAssign) else list(value)
        elif isinstance(node, ast.Import):
            bound.update((a.asname or a.name).split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            bound.update(a.asname or a.name for a in node.names)
    return exported, bound, defined


def test_every_package_module_is_checked() -> None:
    assert len(MODULES) > 50  # the walk found the tree (a wrong ROOT finds nothing and passes everything)


@pytest.mark.parametrize("path", MODULES, ids=_module_name)
def test_all_is_declared_and_true(path: Path) -> None:
    exported, bound, defined = _declared(path)
    name = _module_name(path)
    assert exported is not None, f"{name} has no __all__"
    assignments = [n for n in _top_level(_tree(path)) if "__all__" in _assigned(n)]
    assert len(assignments) == 1, f"{name} sets __all__ {len(assignments)} times (the last one wins silently)"
    assert len(exported) == len(set(exported)), f"{name}.__all__ repeats a name"
    missing = sorted(set(exported) - bound)
    assert not missing, f"{name}.__all__ names what the module does not have: {missing}"
    unlisted = sorted(n for n in defined - set(exported) if not n.startswith("_"))
    assert not unlisted, f"{name} defines public names not in __all__ (list them, or start them with _): {unlisted}"


@pytest.mark.parametrize("path", MODULES, ids=_module_name)
def test_module_opens_with_a_docstring(path: Path) -> None:
    doc = ast.get_docstring(_tree(path))
    assert doc and doc.strip(), f"{_module_name(path)} does not open with a docstring saying its one job"
