"""Dashboard callback latency (p50/p95) for the fleet and site pages with 50 sites and 500 machines.

A fleet of 50 sites × 10 machines is generated from the example fleet's templates, two hours of
history are written through the live reducer into a real SQLite store, and the fleet and site
callbacks are called through Dash's own ``/_dash-update-component`` endpoint (Flask test client:
request parsing, callback, figure building and JSON serialisation, no network). "cold" clears the
query cache before every call (every historian read happens: the first view after a restart);
"refresh" expires the live reads but keeps the snapshots of the past (start of day, usage base), as
an interval refresh after the 2 s TTL does; "warm" is a refresh within the TTL.
Target: p95 ≤ 100 ms. Run: ``.venv/bin/python bench/dashboard_bench.py``.
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "dashboard"))

import history  # noqa: E402

from connectors.config import load  # noqa: E402
from connectors.store import SqliteHistorian  # noqa: E402
from dashboard import ids  # noqa: E402
from dashboard.app import create_app  # noqa: E402
from dashboard.queries import QueryService  # noqa: E402
from dashboard.services import Services  # noqa: E402
from twin.spec import FleetSpec, MachineId, SiteId  # noqa: E402

NOW = datetime(2026, 1, 7, 12, 0, tzinfo=UTC)
N_SITES = 50
MACHINES_PER_SITE = 10
CALLS = 40


def big_fleet() -> FleetSpec:
    base = load(ROOT / "examples" / "fleet.toml").fleet
    sites = []
    for i in range(N_SITES):
        proto = base.sites[i % len(base.sites)]
        sid = SiteId(f"{proto.id}-{i:02d}")
        machines = tuple(
            replace(proto.machines[k % len(proto.machines)], id=MachineId(f"M{k + 1:02d}"), site=sid)
            for k in range(MACHINES_PER_SITE)
        )
        sites.append(replace(proto, id=sid, name=f"{proto.name} {i:02d}", machines=machines))
    return FleetSpec(id="bench", name="bench fleet", sites=tuple(sites), templates=base.templates,
                     products=base.products, alarms=base.alarms)


def post(client, outputs: list[tuple[str, str]], inputs: list[dict[str, object]]) -> float:  # type: ignore[no-untyped-def]
    output = "...".join(f"{i}.{p}" for i, p in outputs)
    body = {"output": f"..{output}.." if len(outputs) > 1 else output,
            "outputs": [{"id": i, "property": p} for i, p in outputs] if len(outputs) > 1
            else {"id": outputs[0][0], "property": outputs[0][1]},
            "inputs": inputs, "changedPropIds": [f"{inputs[0]['id']}.{inputs[0]['property']}"], "state": []}
    t = time.perf_counter()
    r = client.post("/_dash-update-component", data=json.dumps(body), content_type="application/json")
    dt = time.perf_counter() - t
    if r.status_code != 200:
        raise SystemExit(f"callback failed: {r.status_code} {r.data[:300]!r}")
    return dt * 1000


def pct(xs: list[float], q: float) -> float:
    return statistics.quantiles(xs, n=100, method="inclusive")[int(q) - 1]


def main() -> None:
    fleet = big_fleet()
    tmp = Path(tempfile.mkdtemp(prefix="dash-bench-"))
    h = SqliteHistorian(tmp / "h.sqlite", fleet)
    t = time.perf_counter()
    history.fill(h, fleet, NOW, hours=2.0, step_s=120.0, checkpoint_every=15)
    print(f"history: {N_SITES} sites, {N_SITES * MACHINES_PER_SITE} machines, 2 h at 120 s "
          f"written in {time.perf_counter() - t:.1f} s")
    cases = {
        "fleet tiles": ([(ids.FLEET_TILES, "children"), (ids.FLEET_SUMMARY, "children")],
                        [{"id": ids.REFRESH, "property": "n_intervals", "value": 1}]),
        "site page": ([(ids.SITE_HEADER, "children"), (ids.SITE_TILES, "children"), (ids.SITE_OEE, "figure"),
                       (ids.SITE_STOCK, "children"), (ids.SITE_SHIPMENTS, "children"), (ids.SITE_ALARMS, "rowData")],
                      [{"id": ids.SITE_SELECT, "property": "value", "value": fleet.sites[7].id},
                       {"id": ids.REFRESH, "property": "n_intervals", "value": 1},
                       {"id": ids.SITE_ACK_RESULT, "property": "children", "value": None}]),
        "site timeline": ([(ids.SITE_TIMELINE, "figure")],
                          [{"id": ids.SITE_SELECT, "property": "value", "value": fleet.sites[7].id},
                           {"id": ids.REFRESH, "property": "n_intervals", "value": 1}]),
        "site trend": ([(ids.SITE_TREND, "figure")],
                       [{"id": ids.SITE_SELECT, "property": "value", "value": fleet.sites[7].id},
                        {"id": ids.SITE_TREND_SIGNAL, "property": "value", "value": "power_kw"},
                        {"id": ids.REFRESH, "property": "n_intervals", "value": 1}]),
    }
    print(f"{'callback':<16}{'cache':<9}{'p50 ms':>9}{'p95 ms':>9}{'max ms':>9}   target p95 ≤ 100 ms")
    for mode in ("cold", "refresh", "warm"):
        queries = QueryService(fleet=fleet, historian=h, clock=lambda: NOW, ttl_s=2.0)
        app = create_app(Services(queries=queries, cache_dir=tmp / "jobs"))
        client = app.server.test_client()
        client.get("/")
        client.get("/_dash-layout")
        for name, (outputs, inputs) in cases.items():
            post(client, outputs, inputs)  # first call of each: imports, warm-up
            samples = []
            for _ in range(CALLS):
                if mode == "cold":
                    queries.invalidate()
                elif mode == "refresh":
                    queries.invalidate(keep_past=True)
                samples.append(post(client, outputs, inputs))
            print(f"{name:<16}{mode:<9}{statistics.median(samples):>9.1f}{pct(samples, 95):>9.1f}{max(samples):>9.1f}")
    h.close()


if __name__ == "__main__":
    main()
