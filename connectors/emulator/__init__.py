"""PLCs for the demo and the tests: a seeded plant process served over Modbus TCP with fault injection.

``plant`` is the pure, time-steppable process (no I/O, usable without any server, e.g. to
backfill history), ``truth`` the real figures it runs where they differ from the configuration;
``server`` serves its values through the configured register maps.
"""

from __future__ import annotations

from connectors.emulator.plant import Plant
from connectors.emulator.truth import Truth, load_truth

__all__ = ["Plant", "Truth", "load_truth"]
