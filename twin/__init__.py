"""The digital twin's domain: plant description, readings, immutable state, live reducer, KPIs, simulation.

Pure code: no network or disk I/O, no wall clock. Clock, randomness and stores are passed in.
"""

__all__: list[str] = []
