"""Pins which modules may import each protocol library: one adapter per protocol, nothing leaks.

An AST walk over the product's packages (``twin``, ``connectors``, ``dashboard``, ``app``) finds every
``import X`` / ``from X import ...`` (also inside functions and ``TYPE_CHECKING`` blocks) and checks
it against the table below. A new importer is a design change: move the code behind the adapter, or
change the table here on purpose.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("twin", "connectors", "dashboard", "app")

# library -> the modules (paths from the project root, or folder prefixes ending in "/") allowed to import it
ALLOWED: dict[str, tuple[str, ...]] = {
    "pymodbus": ("connectors/modbus/client.py", "connectors/emulator/modbus_server.py"),
    "influxdb_client": ("connectors/influx/client.py",),
    "asyncua": ("connectors/opcua/client.py", "connectors/emulator/opcua_endpoint.py"),
    "aiohttp": ("connectors/feeds/endpoint.py", "connectors/influx/client.py"),
    "dash": ("dashboard/",),
    "plotly": ("dashboard/",),
    "simpy": ("twin/sim/",),
    "weasyprint": ("app/report.py",),
    "lifelines": ("twin/health/model.py",),
    "pandas": ("twin/health/model.py",),
}


def _imported(tree: ast.AST) -> set[str]:
    """The top-level names of every absolute module imported anywhere in ``tree``."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def _importers() -> dict[str, set[str]]:
    found: dict[str, set[str]] = {lib: set() for lib in ALLOWED}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            rel = path.relative_to(ROOT).as_posix()
            for lib in _imported(ast.parse(path.read_text(encoding="utf-8"), rel)) & set(ALLOWED):
                found[lib].add(rel)
    return found


def _allowed(lib: str, module: str) -> bool:
    return any(module.startswith(a) if a.endswith("/") else module == a for a in ALLOWED[lib])


@pytest.mark.parametrize("lib", sorted(ALLOWED))
def test_only_its_adapter_imports_each_protocol_library(lib: str) -> None:
    importers = _importers()[lib]
    assert importers, f"nothing imports {lib}: the table is out of date"
    strays = sorted(m for m in importers if not _allowed(lib, m))
    assert not strays, f"{lib} may only be imported by {ALLOWED[lib]}, not by {strays}"


def test_every_named_adapter_exists_and_imports_its_library() -> None:
    importers = _importers()
    for lib, allowed in ALLOWED.items():
        for module in allowed:
            if module.endswith("/"):
                assert (ROOT / module).is_dir(), module
            else:
                assert module in importers[lib], f"{module} is allowed {lib} but does not import it"
