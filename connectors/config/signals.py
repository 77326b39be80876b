"""What a source may feed: the signals of an asset (a machine or a stocked item) at a site, checked one way.

Modbus points, InfluxDB mappings and OPC UA nodes all name an asset and a signal; each is checked
here, with the same two messages wherever it is written.
"""

from __future__ import annotations

from twin.errors import Problem
from twin.live import INVENTORY_SIGNALS
from twin.spec import SiteSpec

__all__ = ["asset_signals", "check_signal"]


def asset_signals(site: SiteSpec, asset: str) -> tuple[str, ...] | None:
    """The signals ``asset`` has at ``site`` (a machine's template's, or a stocked item's); None: no such asset."""
    machine = site.machine(asset)
    if machine is not None:
        return tuple(sig.name for sig in machine.template.signals)
    if site.item(asset) is not None:
        return INVENTORY_SIGNALS
    return None


def check_signal(site: SiteSpec, asset: str, signal: str, path: str, problems: list[Problem]) -> bool:
    """Whether ``asset`` at ``site`` has ``signal``; the problem (at ``path``.asset or .signal) appended if not."""
    signals = asset_signals(site, asset)
    if signals is None:
        problems.append(Problem(path=f"{path}.asset", message=f"no machine or SKU with this id at site '{site.id}'",
                                got=asset))
        return False
    if signal not in signals:
        problems.append(Problem(path=f"{path}.signal", message=f"not a signal of {asset} (it has "
                                f"{', '.join(signals)})", got=signal))
        return False
    return True
