"""The InfluxDB feed against a real InfluxDB 1.6: readings, incremental polling, health, end to end."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
from collections.abc import Callable, Coroutine
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from connectors.collector import Collector
from connectors.config import PlantConfig, load_text
from connectors.config.influx_feed import InfluxApi, InfluxConnection, InfluxFeed, InfluxMapping
from connectors.influx.csv import dt_to_ns
from connectors.influx.feed import FeedPoller, InfluxFeedPoller
from connectors.store import SqliteHistorian
from tests.conftest import EXAMPLES, free_port
from tests.connectors.influx_feed.conftest import Influxd
from twin.frozen import FrozenDict
from twin.readings import Quality, Reading
from twin.spec import MachineStatus

pytestmark = pytest.mark.server

EXAMPLE = EXAMPLES / "influx-site.toml"
T0 = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
T0_NS = dt_to_ns(T0)  # 1767600000000000000
S = 1_000_000_000


def sync(fn: Callable[..., Coroutine[Any, Any, None]]) -> Callable[..., None]:
    """Run an async test in its own event loop, bounded in time."""
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        asyncio.run(asyncio.wait_for(fn(*args, **kwargs), timeout=30))
    return wrapper


def config_for(server: Influxd, extra: str = "") -> PlantConfig:
    """The example fleet, its feed pointed at ``server``."""
    text = EXAMPLE.read_text(encoding="utf-8").replace("http://127.0.0.1:8086", server.url)
    return load_text(text + extra, source=EXAMPLE)


def fixed_clock(t: datetime):  # type: ignore[no-untyped-def]
    return lambda: t


def by_target(readings: list[Reading]) -> dict[tuple[str, str], Reading]:
    out = {(r.asset, r.signal): r for r in readings}
    assert len(out) == len(readings), "one reading per target expected"
    return out


TELEGRAF_LINES = "\n".join([
    f'printer,host=printer-1,machine=P1 state="RUN",parts_ok=118i,parts_scrap=3i,nozzle_temp=214.5,power_w=310 {T0_NS}',
    f'printer,host=printer-2,machine=P2 state="IDLE",parts_ok=40i,parts_scrap=0i,nozzle_temp=25,power_w=12 {T0_NS + 1}',
    f"washer,host=wash-1 status=2i,cycles_ok=40i,cycles_bad=0i {T0_NS + S // 2}",
    f"washer,host=wash-2 status=3i {T0_NS}",  # another host: not mapped
    f'packing,host=pack-1 state="JAM",boxes=97i,rejects=1i {T0_NS + 123_456_789}',
    f"stock,sku=PLA-1KG,site=lyon on_hand_kg=18.4 {T0_NS}",
    f'printer,host=printer-9,machine=P9 state="RUN" {T0_NS}',  # a machine not in the mapping's assets
])


@sync
async def test_points_become_readings_with_their_own_timestamps(influxd: Influxd) -> None:
    influxd.write("telegraf", TELEGRAF_LINES)
    cfg = config_for(influxd)
    poller = FeedPoller(cfg.influx[0], clock=fixed_clock(T0 + timedelta(seconds=60)))
    try:
        got = by_target(await poller.poll_once())
    finally:
        await poller.close()
    assert poller.reachable and poller.queries == 1
    # P1: 5 fields, P2: 5, W1: 3, PK1: 3, PLA-1KG: 1 (wash-2 and P9 are not mapped)
    assert len(got) == 17
    p1 = {sig: got[("P1", sig)].value for sig in ("status", "good_count", "scrap_count", "nozzle_temp_c")}
    assert p1 == {"status": 2, "good_count": 118, "scrap_count": 3, "nozzle_temp_c": 214.5}  # "RUN" -> 2
    assert got[("P1", "power_kw")].value == pytest.approx(0.31)  # 310 W * 0.001
    assert got[("P2", "status")].value == 1 and got[("P2", "nozzle_temp_c")].value == 25
    assert got[("W1", "status")].value == 2 and got[("W1", "good_count")].value == 40
    assert got[("PLA-1KG", "on_hand")].value == 18.4
    assert all(r.site == "pod-lyon" for r in got.values())
    # each reading keeps its point's time (nanoseconds truncated to microseconds), never "now"
    assert got[("P1", "status")].ts == T0
    assert got[("P2", "status")].ts == T0  # T0 + 1 ns
    assert got[("W1", "status")].ts == T0 + timedelta(milliseconds=500)
    assert got[("PK1", "good_count")].ts == T0 + timedelta(microseconds=123_456)
    # a status text outside the enum map is BAD with the reason, the other fields of the point are fine
    pk1 = got[("PK1", "status")]
    assert (pk1.quality, pk1.value, pk1.reason) == (Quality.BAD, None, "value 'JAM' not in the enum map of "
                                                                        "field 'state'")
    assert got[("PK1", "good_count")].quality is Quality.GOOD
    assert all(r.quality is Quality.GOOD for k, r in got.items() if k != ("PK1", "status"))


@sync
async def test_incremental_polls_read_new_and_late_points_once(influxd: Influxd) -> None:
    influxd.write("telegraf", TELEGRAF_LINES)
    cfg = config_for(influxd)
    poller = FeedPoller(cfg.influx[0], clock=fixed_clock(T0 + timedelta(seconds=60)))
    try:
        assert len(await poller.poll_once()) == 17
        assert await poller.poll_once() == []  # nothing new: the overlap window is re-read, nothing re-emitted
        assert poller.reader.duplicates == 17
        influxd.write("telegraf", f"printer,host=printer-1,machine=P1 parts_ok=121i {T0_NS + 10 * S}")
        new = await poller.poll_once()
        assert [(r.asset, r.signal, r.value, r.ts) for r in new] == [
            ("P1", "good_count", 121, T0 + timedelta(seconds=10))]
        # late: older than the newest point (T0 + 10 s) but inside overlap_s = 30 s -> emitted, once
        influxd.write("telegraf", f"printer,host=printer-2,machine=P2 parts_ok=41i {T0_NS + 5 * S}")
        late = await poller.poll_once()
        assert [(r.asset, r.signal, r.value, r.ts) for r in late] == [
            ("P2", "good_count", 41, T0 + timedelta(seconds=5))]
        assert await poller.poll_once() == []
        # too late: 60 s before the newest point, outside the overlap window -> not read (documented limit)
        influxd.write("telegraf", f"printer,host=printer-3,machine=P3 parts_ok=7i {T0_NS - 50 * S}")
        assert await poller.poll_once() == []
        assert poller.reader.cursor_ns == T0_NS + 10 * S
    finally:
        await poller.close()


@sync
async def test_http_401_and_unknown_database_are_stale_with_the_reason(
    influxd_auth: Influxd, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    influxd_auth.write("telegraf", TELEGRAF_LINES, user=("admin", "s3cret"))
    cfg = config_for(influxd_auth)
    conn = replace(cfg.influx[0].connection, username="admin", password_env="TEST_FEED_PW")
    monkeypatch.setenv("TEST_FEED_PW", "wrong")
    feed = replace(cfg.influx[0], connection=conn)
    poller = FeedPoller(feed, clock=fixed_clock(T0 + timedelta(seconds=60)))
    try:
        down = await poller.poll_once()
        assert len(down) == len(feed.targets) == 22
        assert {(r.quality, r.value, r.reason) for r in down} == {
            (Quality.STALE, None, "HTTP 401 Unauthorized: authorization failed")}
        monkeypatch.setenv("TEST_FEED_PW", "s3cret")
        poller.link.retry_at = 0.0  # skip the backoff wait: the next poll tries again
        up = await poller.poll_once()
        assert len(up) == 17 and all(r.reason != "HTTP 401 Unauthorized: authorization failed" for r in up)
        assert poller.reachable
    finally:
        await poller.close()
    nodb = replace(feed, connection=replace(conn, database="nope"))
    poller = FeedPoller(nodb, clock=fixed_clock(T0 + timedelta(seconds=60)))
    try:
        down = await poller.poll_once()
        assert {(r.quality, r.reason) for r in down} == {
            (Quality.STALE, "influx query failed: database not found: nope")}
    finally:
        await poller.close()


def _fast(feed: InfluxFeed, **changes: object) -> InfluxFeed:
    fast: dict[str, object] = {"poll_interval_s": 0.1, "timeout_s": 0.5, "bad_after_s": 0.6,
                               "reconnect_min_s": 0.05, "reconnect_max_s": 0.2}
    return replace(feed, **{**fast, **changes})  # type: ignore[arg-type]


@pytest.mark.slow
@sync
async def test_stopped_server_goes_stale_then_bad_while_another_feed_keeps_updating(
    influxd: Influxd, influxd2: Influxd
) -> None:
    cfg_a, cfg_b = config_for(influxd), config_for(influxd2)
    # a refused connection fails at once: the 2 s timeout only keeps a busy CI core from failing a live query
    feed_a = _fast(cfg_a.influx[0], id="a", timeout_s=2.0)
    feed_b = _fast(cfg_b.influx[0], id="b", timeout_s=2.0)
    got: list[tuple[float, str, Reading]] = []  # (monotonic time, feed, reading)

    def emitter(name: str):  # type: ignore[no-untyped-def]
        def emit(readings: list[Reading]) -> None:
            got.extend((time.monotonic(), name, r) for r in readings)
        return emit

    def now_line(machine: str, n: int) -> str:
        return f"printer,host=h,machine={machine} parts_ok={n}i {time.time_ns()}"

    fa, fb = FeedPoller(feed_a), FeedPoller(feed_b)  # one task each, as InfluxFeedPoller runs them
    stop = asyncio.Event()

    async def writer() -> None:  # Telegraf writing into B every 50 ms, and into A while it is up
        n = 0
        while not stop.is_set():
            n += 1
            await asyncio.to_thread(influxd2.write, "telegraf", now_line("P2", n))
            with contextlib.suppress(OSError):  # A is down (or starting) for part of the test
                await asyncio.to_thread(influxd.write, "telegraf", now_line("P1", n))
            await asyncio.sleep(0.05)

    async def scenario() -> dict[str, float]:
        marks: dict[str, float] = {}
        await asyncio.sleep(0.5)
        await asyncio.to_thread(influxd.stop)
        marks["stop"] = time.monotonic()
        await asyncio.sleep(1.2)  # > bad_after_s = 0.6 s
        marks["restart"] = time.monotonic()
        await asyncio.to_thread(influxd.start)
        await asyncio.sleep(0.8)
        stop.set()
        return marks

    async with asyncio.TaskGroup() as tg:
        tg.create_task(fa.run(emitter("a"), stop))
        tg.create_task(fb.run(emitter("b"), stop))
        tg.create_task(writer())
        marks_task = tg.create_task(scenario())
    marks = marks_task.result()

    a_p1 = [(t, r) for t, f, r in got if f == "a" and r.asset == "P1" and r.signal == "good_count"]
    b_p2 = [(t, r) for t, f, r in got if f == "b" and r.asset == "P2" and r.signal == "good_count"]
    before = [r for t, r in a_p1 if t < marks["stop"]]
    during = [r for t, r in a_p1 if marks["stop"] < t < marks["restart"]]
    after = [r for t, r in a_p1 if t > marks["restart"] + 0.3]
    assert before and all(r.quality is Quality.GOOD for r in before)
    # while A is down: STALE at once, BAD once it has been down for bad_after_s, each with the reason
    qualities = [r.quality for r in during]
    assert qualities[0] is Quality.STALE and Quality.BAD in qualities
    assert qualities.index(Quality.BAD) > 0 and all(q is Quality.BAD for q in qualities[qualities.index(Quality.BAD):])
    assert all(r.reason.startswith("influx unreachable: cannot connect to ") for r in during)
    assert all(r.value is None for r in during)
    # B kept delivering new points the whole time (poll every 0.1 s, writes every 50 ms)
    b_during = [r for t, r in b_p2 if marks["stop"] < t < marks["restart"]]
    assert len(b_during) >= 5 and all(r.quality is Quality.GOOD for r in b_during)
    assert len({r.ts for r in b_during}) == len(b_during)  # new points, each once
    # A back: GOOD again, with fresh points
    assert after and after[-1].quality is Quality.GOOD and after[-1].ts.timestamp() > marks["restart"] - 60


@sync
async def test_a_server_that_never_answers_times_out_without_delaying_other_feeds(influxd: Influxd) -> None:
    held: list[asyncio.StreamWriter] = []

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)  # accepts, answers nothing

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    cfg = config_for(influxd)
    dead = _fast(cfg.influx[0], id="dead", timeout_s=0.4,
                 connection=replace(cfg.influx[0].connection, url=f"http://127.0.0.1:{port}"))
    live = _fast(cfg.influx[0], id="live")
    seen: dict[str, list[Reading]] = {"dead": [], "live": []}
    n_live = 0

    def emit(readings: list[Reading]) -> None:
        nonlocal n_live
        if readings and readings[0].reason.startswith("influx unreachable"):
            seen["dead"].extend(readings)
        else:
            n_live += 1
            seen["live"].extend(readings)

    influxd.write("telegraf", f"printer,host=h,machine=P1 parts_ok=1i {time.time_ns()}")
    poller = InfluxFeedPoller([dead, live], emit, seed=7)
    stop = asyncio.Event()
    t0 = time.monotonic()
    async with asyncio.TaskGroup() as tg:
        tg.create_task(poller.run(stop))
        await asyncio.sleep(1.0)
        stop.set()
    server.close()
    for w in held:
        w.close()
    await server.wait_closed()
    assert time.monotonic() - t0 < 3.0
    assert seen["dead"] and {r.reason for r in seen["dead"]} == {
        f"influx unreachable: no answer from http://127.0.0.1:{port} within 0.4 s"}
    # ~10 polls in 1 s at 0.1 s; behind the dead feed's 0.4 s timeouts it could make at most 3
    assert poller.feeds["live"].queries >= 5
    assert [r.value for r in seen["live"] if r.asset == "P1" and r.signal == "good_count"] == [1]


@sync
async def test_end_to_end_collector_and_sqlite_historian(influxd: Influxd, tmp_path: Path) -> None:
    influxd.write("telegraf", "\n".join([
        f'printer,host=printer-1,machine=P1 state="RUN",parts_ok=118i,parts_scrap=3i,nozzle_temp=214.5 {T0_NS}',
        f'printer,host=printer-2,machine=P2 state="IDLE",parts_ok=40i,parts_scrap=0i {T0_NS}',
        f"washer,host=wash-1 status=3i,cycles_ok=40i,cycles_bad=0i {T0_NS}",
        f'packing,host=pack-1 state="RUN",boxes=97i,rejects=1i {T0_NS}',
        f"stock,sku=PLA-1KG,site=lyon on_hand_kg=18.4 {T0_NS}",
    ]))
    cfg = config_for(influxd)
    now = [T0 + timedelta(seconds=5)]

    def clock() -> datetime:
        return now[0]

    historian = SqliteHistorian(tmp_path / "history.db", cfg.fleet)
    collector = Collector(cfg.fleet, (), historian, clock=clock)
    poller = InfluxFeedPoller(cfg.influx, collector.ingest, clock=clock)
    fp = poller.feeds["lyon-telegraf"]
    try:
        collector.ingest(await fp.poll_once())
        collector.flush()
        influxd.write("telegraf", "\n".join([
            f"printer,host=printer-1,machine=P1 parts_ok=121i,parts_scrap=4i,nozzle_temp=215.0 {T0_NS + 10 * S}",
            f'packing,host=pack-1 state="IDLE",boxes=99i,rejects=1i {T0_NS + 10 * S}',
        ]))
        now[0] = T0 + timedelta(seconds=15)
        collector.ingest(await fp.poll_once())
        collector.flush()
    finally:
        await fp.close()
    state = historian.state_at("pod-lyon", T0 + timedelta(seconds=15))
    historian.close()
    assert state is not None
    m = state.machines
    assert (m["P1"].status, m["P2"].status, m["W1"].status, m["PK1"].status) == (
        MachineStatus.RUNNING, MachineStatus.IDLE, MachineStatus.FAULT, MachineStatus.IDLE)
    # counters: the first point is the baseline, then 118 -> 121 is 3 good parts, 3 -> 4 one scrap
    assert (m["P1"].good_total, m["P1"].scrap_total) == (3, 1)
    assert (m["PK1"].good_total, m["PK1"].scrap_total) == (2, 0)  # 97 -> 99 boxes
    assert m["P1"].signals["nozzle_temp_c"].value == 215.0
    assert m["P1"].signals["nozzle_temp_c"].ts == T0 + timedelta(seconds=10)
    assert m["P1"].status_quality is Quality.GOOD
    # PK1 went RUN -> IDLE at the point's own time, not at the poll's
    assert m["PK1"].status_since == T0 + timedelta(seconds=10)
    assert state.inventory["PLA-1KG"].on_hand == 18.4
    # P3 never reported: unknown, as a silent Modbus machine would be
    assert m["P3"].status is MachineStatus.UNKNOWN


@sync
async def test_names_with_quotes_spaces_and_commas_are_quoted_for_the_real_server(influxd: Influxd) -> None:
    # line protocol escapes: "we ird,m" measurement, tag key 'ta"g' with value "it's x", field 'f"i'
    influxd.write("telegraf", f'we\\ ird\\,m,ta"g=it\'s\\ x,machine=P3 f"i=21.5 {T0_NS}\n'
                              f'we\\ ird\\,m,ta"g=other,machine=P3 f"i=99 {T0_NS}')
    cfg = config_for(influxd)
    odd = InfluxMapping(measurement="we ird,m", tags=FrozenDict({'ta"g': "it's x"}), field='f"i',
                        signal="nozzle_temp_c", asset_tag="machine", assets=frozenset({"P3"}))
    poller = FeedPoller(replace(cfg.influx[0], mappings=(odd,)), clock=fixed_clock(T0 + timedelta(seconds=60)))
    try:
        got = await poller.poll_once()
    finally:
        await poller.close()
    assert [(r.asset, r.signal, r.value, r.quality, r.ts) for r in got] == [
        ("P3", "nozzle_temp_c", 21.5, Quality.GOOD, T0)]


@sync
async def test_v2_feed_errors_through_influxdb_client(influxd: Influxd, monkeypatch: pytest.MonkeyPatch) -> None:
    # No InfluxDB 2.x can run here: InfluxDB 1.6 has no /api/v2/query (HTTP 404), a closed port is unreachable.
    monkeypatch.setenv("TEST_FEED_TOKEN", "tok")
    cfg = config_for(influxd)
    v2 = InfluxConnection(api=InfluxApi.V2, url=influxd.url, org="acme", bucket="telegraf",
                          token_env="TEST_FEED_TOKEN")
    poller = FeedPoller(replace(cfg.influx[0], connection=v2), clock=fixed_clock(T0))
    try:
        got = await poller.poll_once()
    finally:
        await poller.close()
    assert {(r.quality, r.reason.split(":")[0]) for r in got} == {(Quality.STALE, "HTTP 404 Not Found")}
    closed = replace(v2, url=f"http://127.0.0.1:{free_port()}")
    poller = FeedPoller(replace(cfg.influx[0], connection=closed), clock=fixed_clock(T0))
    try:
        got = await poller.poll_once()
    finally:
        await poller.close()
    assert {r.quality for r in got} == {Quality.STALE}
    assert got[0].reason.startswith("influx unreachable: NewConnectionError")
    monkeypatch.delenv("TEST_FEED_TOKEN")
    poller = FeedPoller(replace(cfg.influx[0], connection=v2), clock=fixed_clock(T0))
    try:
        got = await poller.poll_once()
    finally:
        await poller.close()
    assert got[0].reason == "no token: the environment variable 'TEST_FEED_TOKEN' is not set"
