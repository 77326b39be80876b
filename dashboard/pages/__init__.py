"""The dashboard's pages, one module each; ``PAGES`` lists them in navigation order.

Each module has a pure ``layout(**query)`` (no services, no I/O: data arrive through callbacks)
and ``register(app, services)``, which registers the page with Dash Pages and its callbacks on
``app``. Helpers shared by the pages (acknowledging alarms, grids) live in ``_shared``.
"""

from __future__ import annotations

__all__ = ["PAGES"]

PAGES: tuple[str, ...] = ("fleet", "site", "machine", "whatif", "replay", "alarms", "shift", "trust")
