"""Dashboard callback latency (p50/p95) for the fleet, site and attention pages with 50 sites and 500 machines.

A fleet of 50 sites × 10 machines is generated from the example fleet's templates, two hours of
history are written through the live reducer into a real SQLite store, and the fleet and site
callbacks are called through Dash's own ``/_dash-update-component`` endpoint (Flask test client:
request parsing, callback, figure building and JSON serialisation, no network). "cold" clears the
query cache before every call (every historian read happens: the first view after a restart);
"refresh" expires the live reads but keeps the snapshots of the past (start of day, usage base), as
an interval refresh after the 2 s TTL does, without the refresher thread; "warm" is a refresh within
the TTL; "live" is how ``twin dashboard`` runs: the query service's refresher thread recomputes the
fleet tiles every 2 s while a writer thread appends a new poll of all 500 machines (through the live
reducer, as the collector does) every second and the clock moves on with it, so the data the
callbacks read keeps changing. Target: p95 ≤ 100 ms. The site page is called as a browser left
open on it calls it: an interval tick, sending back the fingerprints of what it already holds
(``kB/resp`` is the mean response size); "site switch" picks a different site each call, none
viewed before: its view is read and every part drawn and sent (the first view of a site).
"attention" is the attention page's list: the fleet's projection is made once by
``dashboard.attention.AttentionService.run_now`` before the calls (20 replications × 24 h of all 50
sites, its time printed), the list once by ``refresh`` (its time printed: what the service's list
thread does every 5 s, reading every site's view), then the list thread runs during the calls as in
``twin dashboard`` and the page's callback only reads its last list; "fleet top" the same list's top
five on the fleet overview; "site, all hot" the site page again once the list has made the refresher
keep every site's view fresh.
Run: ``.venv/bin/python bench/dashboard_bench.py [cold|refresh|warm|live ...]``.
"""

from __future__ import annotations

import json
import multiprocessing
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "dashboard"))

import history  # noqa: E402

from connectors.config import load  # noqa: E402
from connectors.store import SqliteHistorian  # noqa: E402
from dashboard import ids  # noqa: E402
from dashboard.app import create_app  # noqa: E402
from dashboard.attention import AttentionService, AttentionSettings  # noqa: E402
from dashboard.pages.attention import ATTENTION_LIST, ATTENTION_SUMMARY, FLEET_ATTENTION  # noqa: E402
from dashboard.queries import QueryService  # noqa: E402
from dashboard.services import Services  # noqa: E402
from twin import live  # noqa: E402
from twin.frozen import FrozenDict  # noqa: E402
from twin.readings import Reading  # noqa: E402
from twin.spec import FleetSpec, MachineId, SignalKind, SiteId  # noqa: E402
from twin.state import TwinState  # noqa: E402

NOW = datetime(2026, 1, 7, 12, 0, tzinfo=UTC)
N_SITES = 50
MACHINES_PER_SITE = 10
CALLS = 40
SITE_EXTRA_OUTPUTS: list[tuple[str, str]] = [(ids.SITE_ORDERS, "children"), (ids.SITE_PROJECTION, "figure")]


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


def post(client, outputs: list[tuple[str, str]], inputs: list[dict[str, object]],  # type: ignore[no-untyped-def]
         state: list[dict[str, object]] | None = None, trigger: str = "") -> tuple[float, dict[str, object], int]:
    """One callback request as the browser sends it: (milliseconds, response JSON, response bytes)."""
    output = "...".join(f"{i}.{p}" for i, p in outputs)
    body = {"output": f"..{output}.." if len(outputs) > 1 else output,
            "outputs": [{"id": i, "property": p} for i, p in outputs] if len(outputs) > 1
            else {"id": outputs[0][0], "property": outputs[0][1]},
            "inputs": inputs, "state": state or [],
            # an interval tick, as in a browser left open on the page, unless told otherwise
            "changedPropIds": [trigger or f"{ids.REFRESH}.n_intervals"]}
    t = time.perf_counter()
    r = client.post("/_dash-update-component", data=json.dumps(body), content_type="application/json")
    dt = time.perf_counter() - t
    if r.status_code == 204:
        return dt * 1000, {}, 0
    if r.status_code != 200:
        raise SystemExit(f"callback failed: {r.status_code} {r.data[:300]!r}")
    return dt * 1000, json.loads(r.data), len(r.data)


class LiveWriter:
    """Appends one poll of every machine every ``period_s`` (status flips, counters grow), as a collector.

    It runs in its own process with its own connection, as the collector does.
    """

    def __init__(self, fleet: FleetSpec, path: Path, start: datetime, period_s: float = 1.0) -> None:
        self.fleet, self.path, self.period_s = fleet, path, period_s
        self.start_t = start
        self._now_s = multiprocessing.Value("d", start.timestamp())
        self._ticks = multiprocessing.Value("i", 0)
        self._stop = multiprocessing.Event()
        self._proc = multiprocessing.get_context("fork").Process(target=self._main, daemon=True)

    @property
    def ticks(self) -> int:
        return int(self._ticks.value)

    def clock(self) -> datetime:
        return datetime.fromtimestamp(self._now_s.value, UTC)

    def _main(self) -> None:
        self.h = SqliteHistorian(self.path, self.fleet)
        self.now = self.start_t
        sites = {s.id: self.h.state_at(s.id, self.now) or live.initial_site_state(s, self.now)
                 for s in self.fleet.sites}
        self.state = TwinState(fleet=self.fleet.id, as_of=self.now, sites=FrozenDict(sites))
        self.ticks_done = 0
        while not self._stop.wait(self.period_s):
            self._tick()
        self.h.close()

    def _tick(self) -> None:
        t = self.now + timedelta(seconds=10)
        readings = []
        for site in self.fleet.sites:
            for k, m in enumerate(site.machines):
                codes = {s: c for c, s in m.template.status_codes.items()}
                status = list(codes)[(self.ticks_done + k) % 3 % len(codes)]
                for sig in m.template.signals:
                    if sig.kind is SignalKind.STATUS:
                        readings.append(Reading(ts=t, site=site.id, asset=m.id, signal=sig.name, value=codes[status]))
                    elif sig.kind is SignalKind.GOOD_COUNT:
                        readings.append(Reading(ts=t, site=site.id, asset=m.id, signal=sig.name,
                                                value=5000 + self.ticks_done))
                    elif sig.kind is SignalKind.POWER:
                        readings.append(Reading(ts=t, site=site.id, asset=m.id, signal=sig.name,
                                                value=1.0 + self.ticks_done % 5))
        self.state, events = live.apply(self.fleet, self.state, readings, t)
        self.h.write(readings, list(self.state.sites.values()) if self.ticks_done % 30 == 0 else [], events)
        self.now = t
        self.ticks_done += 1
        self._now_s.value = t.timestamp()
        self._ticks.value = self.ticks_done

    def start(self) -> None:
        self._proc.start()

    def stop(self) -> None:
        self._stop.set()
        self._proc.join(30)


def pct(xs: list[float], q: float) -> float:
    return statistics.quantiles(xs, n=100, method="inclusive")[int(q) - 1]


def main() -> None:
    modes = sys.argv[1:] or ["cold", "refresh", "warm", "live"]
    fleet = big_fleet()
    tmp = Path(tempfile.mkdtemp(prefix="dash-bench-"))
    h = SqliteHistorian(tmp / "h.sqlite", fleet)
    t = time.perf_counter()
    history.fill(h, fleet, NOW, hours=2.0, step_s=120.0, checkpoint_every=15)
    print(f"history: {N_SITES} sites, {N_SITES * MACHINES_PER_SITE} machines, 2 h at 120 s "
          f"written in {time.perf_counter() - t:.1f} s")
    site = fleet.sites[7].id
    refresh = {"id": ids.REFRESH, "property": "n_intervals", "value": 1}
    cases = {
        "fleet tiles": ([(ids.FLEET_TILES, "children"), (ids.FLEET_SUMMARY, "children")], [refresh], None),
        "site page": ([(ids.SITE_HEADER, "children"), (ids.SITE_TILES, "children"), (ids.SITE_ALARMS, "rowData"),
                       (ids.SITE_OEE, "figure"), (ids.SITE_STOCK, "children"), (ids.SITE_SHIPMENTS, "children"),
                       *SITE_EXTRA_OUTPUTS, (ids.SITE_SENT, "data")],
                      [{"id": ids.SITE_SELECT, "property": "value", "value": site}, refresh,
                       {"id": ids.SITE_ACK_RESULT, "property": "children", "value": None}],
                      ids.SITE_SENT),
        # picking another site in the dropdown: a first view, drawn in full (every part sent)
        "site switch": ("site page", ids.SITE_SELECT),
        "site timeline": ([(ids.SITE_TIMELINE, "figure")],
                          [{"id": ids.SITE_SELECT, "property": "value", "value": site}, refresh], None),
        "site trend": ([(ids.SITE_TREND, "figure")],
                       [{"id": ids.SITE_SELECT, "property": "value", "value": site},
                        {"id": ids.SITE_TREND_SIGNAL, "property": "value", "value": "power_kw"}, refresh], None),
        "attention": ([(ATTENTION_LIST, "children"), (ATTENTION_SUMMARY, "children")], [refresh], None),
        "fleet top": ([(FLEET_ATTENTION, "children")], [refresh], None),
    }
    # the attention list reads every site's view, so from here on the refresher keeps all 50 views fresh:
    # the site page once more, under that load
    cases["site, all hot"] = cases["site page"]
    print(f"{'callback':<16}{'mode':<9}{'p50 ms':>9}{'p95 ms':>9}{'max ms':>9}{'kB/resp':>9}   target p95 ≤ 100 ms")
    for mode in modes:
        writer = LiveWriter(fleet, tmp / "h.sqlite", NOW) if mode == "live" else None
        queries = QueryService(fleet=fleet, historian=h, clock=writer.clock if writer else lambda: NOW, ttl_s=2.0)
        # the projection once, here (its thread would run it 5 s after the first view, amid the calls)
        attention = AttentionService(queries=queries, settings=AttentionSettings(enabled=False))
        t = time.perf_counter()
        run = attention.run_now()
        print(f"attention projection ({mode}): {run.replications} × {run.horizon_s / 3600:g} h of {N_SITES} sites, "
              f"{len(run.orders)} open orders, in {time.perf_counter() - t:.1f} s")
        t = time.perf_counter()
        attention.refresh()
        print(f"attention list ({mode}): {N_SITES} site views read and ranked in {time.perf_counter() - t:.2f} s "
              f"by the service (then every {attention.settings.list_every_s:g} s on its thread)")
        attention.start()  # the list thread, as twin dashboard starts it (the projection is off: made above)
        app = create_app(Services(queries=queries, cache_dir=tmp / "jobs", extra={"attention": attention}))
        client = app.server.test_client()
        client.get("/")
        client.get("/_dash-layout")
        if writer is not None:
            queries.start_refresher()
            writer.start()
        for name, case in cases.items():
            trigger = ""
            if isinstance(case[0], str):  # another trigger of an earlier case's callback
                trigger = f"{case[1]}.value"
                case = cases[case[0]]
            outputs, inputs, store = case  # type: ignore[misc]
            # the browser keeps what the page's store last received and sends it back as State
            state: list[dict[str, object]] = [{"id": store, "property": "data", "value": None}] if store else []
            samples, sizes = [], []
            for k in range(CALLS + 1):
                if trigger:  # a different site each time, none of them viewed before
                    inputs = [{**inputs[0], "value": fleet.sites[(8 + k) % N_SITES].id}, *inputs[1:]]
                    state = [{"id": store, "property": "data", "value": None}]
                if mode == "cold":
                    queries.invalidate()
                elif mode == "refresh":
                    queries.invalidate(keep_past=True)
                elif mode == "live":
                    time.sleep(0.1)  # spread the calls over several refreshes and writes
                ms, resp, size = post(client, outputs, inputs, state, trigger)
                if store and resp:
                    sent = resp.get("response", {}).get(store, {}).get("data")  # type: ignore[union-attr]
                    if sent is not None:
                        state = [{"id": store, "property": "data", "value": sent}]
                if k:  # the first call of each: imports, warm-up
                    samples.append(ms)
                    sizes.append(size)
            print(f"{name:<16}{mode:<9}{statistics.median(samples):>9.1f}{pct(samples, 95):>9.1f}"
                  f"{max(samples):>9.1f}{statistics.mean(sizes) / 1000:>9.1f}")
        attention.stop()
        if writer is not None:
            writer.stop()
            queries.stop_refresher()
            print(f"live: {writer.ticks} polls of {N_SITES * MACHINES_PER_SITE} machines written during the run")
    h.close()


if __name__ == "__main__":
    main()
