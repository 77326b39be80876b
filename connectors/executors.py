"""Where Monte Carlo replications run: a Dask cluster, a local process pool, or this process.

One job: the executor factory of ``twin whatif`` / ``twin backtest`` (``app``) and the dashboard's
what-if runner (``dashboard.whatif_engine``). ``twin.sim.montecarlo.run`` takes any
``concurrent.futures.Executor`` (or None: in the calling process); this opens one and closes it.
Dask is an optional extra (``pip install twin[dask]``), imported only when asked for.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from concurrent.futures import Executor, ProcessPoolExecutor

from twin.errors import TwinError

__all__ = ["executor_for"]


@contextlib.contextmanager
def executor_for(dask: str | None, workers: int) -> Iterator[Executor | None]:
    """A Dask executor on the scheduler at ``dask``, a pool of ``workers`` processes, or None (0 workers)."""
    if dask:
        try:
            import distributed
        except ImportError as exc:  # the optional extra is not installed
            raise TwinError("--dask needs dask[distributed] installed") from exc
        try:
            client = distributed.Client(dask, timeout=10)  # type: ignore[no-untyped-call]
        except OSError as exc:
            raise TwinError(f"cannot reach the Dask scheduler at {dask}: {exc}") from exc
        try:
            yield client.get_executor()  # type: ignore[no-untyped-call]
        finally:
            client.close()  # type: ignore[no-untyped-call]
    elif workers > 0:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            yield pool
    else:
        yield None
