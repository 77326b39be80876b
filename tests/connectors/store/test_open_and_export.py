"""Opening the configured historian, and the alarm-journal CSV."""

from __future__ import annotations

import io
from datetime import timedelta
from pathlib import Path

import pytest

from app.historians import open_historian
from connectors.config import HistorianConfig
from connectors.export import export_alarms
from connectors.forward import StoreAndForward
from connectors.store import SqliteHistorian
from tests.connectors.store.conftest import T0
from twin.errors import HistorianError
from twin.frozen import FrozenDict
from twin.spec import FleetSpec, SiteId
from twin.state import Event, EventKind


def cfg(path: Path, kind: str = "sqlite", **kw: object) -> HistorianConfig:
    return HistorianConfig(kind=kind, path=path, retention_raw_days=7, rollup_interval_s=60,
                           checkpoint_interval_s=300, **kw)  # type: ignore[arg-type]


def test_open_writer_and_reader(tmp_path: Path, fleet: FleetSpec, monkeypatch: pytest.MonkeyPatch) -> None:
    w = open_historian(cfg(tmp_path / "h.sqlite"), fleet, "write")
    assert isinstance(w, SqliteHistorian) and not w.readonly and w.retention_raw_days == 7
    w.close()
    r = open_historian(cfg(tmp_path / "h.sqlite"), fleet, "read")
    assert isinstance(r, SqliteHistorian) and r.readonly
    r.close()
    monkeypatch.setenv("TWIN_TEST_INFLUX_TOKEN", "abc")
    saf = open_historian(cfg(tmp_path / "edge.sqlite", "influxdb", url="http://127.0.0.1:9", org="o", bucket="b",
                          token_env="TWIN_TEST_INFLUX_TOKEN"), fleet, "write")
    assert isinstance(saf, StoreAndForward) and "abc" not in repr(saf)
    saf.store.close()  # no server at port 9: close the store only
    with pytest.raises(HistorianError, match="no InfluxDB token"):
        open_historian(cfg(tmp_path / "x", "influxdb", url="http://127.0.0.1:9", org="o", bucket="b",
                        token_env="TWIN_TEST_UNSET"), fleet, "read")


def test_alarm_journal_csv(store: SqliteHistorian) -> None:
    def ev(k: int, kind: EventKind, **data: object) -> Event:
        return Event(ts=T0 + timedelta(seconds=k), site=SiteId("s1"), asset="P1", kind=kind, message=kind.value,
                     data=FrozenDict(data))  # type: ignore[arg-type]

    store.write([], events=[
        ev(0, EventKind.ALARM_RAISED, rule="hot", priority=3, value=251.5),
        ev(1, EventKind.STATUS_CHANGE, to="fault"),  # not an alarm (no row); FAULT suppresses nothing
        ev(2, EventKind.ALARM_ACKNOWLEDGED, rule="hot", priority=3, value=251.5, user="ann", comment="on it"),
    ])
    out = io.StringIO()
    assert export_alarms(store, "s1", T0, T0 + timedelta(minutes=1), out) == 1  # one alarm, raised then acked
    assert out.getvalue().splitlines() == [
        # the dashboard's columns
        "site,asset,priority,message,state,raised,cleared,acked_by,acked_at,comment,shelved,shelved_by,shelved_why,"
        "suppressed,probability,predicted_at",
        "s1,P1,HIGH,alarm_raised,active/acked,2026-01-05T08:00:00+00:00,,ann,2026-01-05T08:00:02+00:00,on it,no,,,no,,",
    ]
