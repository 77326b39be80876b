"""Line protocol, Flux text and annotated-CSV parsing: pure functions, checked on exact text."""

from __future__ import annotations

import doctest
import importlib
import math
from datetime import UTC, datetime, timedelta

import pytest

from connectors.influx.historian import historian_rows as parse_annotated_csv
from connectors.influx.historian import read_token, reading_from_row, series_points
from connectors.influx.lineproto import batch_lines, checkpoint_line, event_line, reading_line
from connectors.influx.query import flux_checkpoint, flux_events, flux_readings
from twin.codec import site_state_to_dict
from twin.errors import HistorianError
from twin.frozen import FrozenDict
from twin.historian import SeriesPoint
from twin.readings import Quality, Reading
from twin.spec import SiteId
from twin.state import Event, EventKind, SiteState

T = datetime(2026, 1, 5, tzinfo=UTC)  # 1,767,571,200 s after the epoch
NS = "1767571200000000000"


def rd(value: object, **kw: object) -> Reading:
    return Reading(ts=T, site="s 1", asset="P,1", signal="a=b", value=value, **kw)  # type: ignore[arg-type]


def test_reading_lines_escape_tags_and_keep_the_type() -> None:
    assert reading_line(rd(2)) == (
        f'reading,site=s\\ 1,asset=P\\,1,signal=a\\=b,quality=good value=2.0,vtype="i",reason="" {NS}'
    )
    assert reading_line(rd("say \"hi\"", quality=Quality.BAD, reason="x\\y")) == (
        f'reading,site=s\\ 1,asset=P\\,1,signal=a\\=b,quality=bad value_str="say \\"hi\\"",vtype="s",'
        f'reason="x\\\\y" {NS}'
    )
    assert 'value=1.0,vtype="b"' in reading_line(rd(True))
    assert reading_line(rd(None)).endswith(f'vtype="n",reason="" {NS}')
    assert 'value_str="inf",vtype="f"' in reading_line(rd(math.inf))


def test_events_of_one_instant_get_distinct_nanoseconds() -> None:
    e = Event(ts=T + timedelta(microseconds=5), site=SiteId("s1"), asset="P1", kind=EventKind.ALARM_RAISED,
              message="too hot", data=FrozenDict({"value": 251.5}))
    assert event_line(e, 0) == (
        'event,site=s1,asset=P1,kind=alarm_raised message="too hot",data="{\\"value\\": 251.5}" '
        "1767571200000005000"
    )
    assert event_line(e, 3).endswith(" 1767571200000005003")
    text = batch_lines([rd(1.5)], [SiteState(site=SiteId("s1"), as_of=T)], [e, e])
    lines = text.split("\n")
    assert [ln.split(",")[0] for ln in lines] == ["reading", "checkpoint", "event", "event"]
    assert lines[3].endswith("5001")
    assert checkpoint_line(SiteState(site=SiteId("s1"), as_of=T)).startswith('checkpoint,site=s1 state="{\\"v\\": 1')


def test_flux_texts() -> None:
    t1 = T + timedelta(hours=1)
    assert flux_readings("plant", "s1", T, t1) == (
        'from(bucket: "plant")\n'
        "  |> range(start: 2026-01-05T00:00:00.000001Z, stop: 2026-01-05T01:00:00.000001Z)\n"
        '  |> filter(fn: (r) => r._measurement == "reading" and r.site == "s1")\n'
        '  |> pivot(rowKey: ["_time", "site", "asset", "signal", "quality"], columnKey: ["_field"], '
        'valueColumn: "_value")\n'
        "  |> group()\n"
        '  |> sort(columns: ["_time"])'
    )
    assert flux_checkpoint("plant", 's"1', t1) == (
        'from(bucket: "plant")\n'
        "  |> range(start: 0, stop: 2026-01-05T01:00:00.000001Z)\n"
        '  |> filter(fn: (r) => r._measurement == "checkpoint" and r.site == "s\\"1" and r._field == "state")\n'
        "  |> last()"
    )
    assert 'r._measurement == "event")' in flux_events("plant", None, T, t1)
    assert 'and r.site == "s1")' in flux_events("plant", "s1", T, t1)


# The example response of InfluxDB's "Annotated CSV" documentation (two tables, #default and #group
# rows), extended with a pivoted reading table as our queries return it.
DOC_CSV = """#group,false,false,true,true,false,false,true,true,true
#datatype,string,long,dateTime:RFC3339,dateTime:RFC3339,dateTime:RFC3339,double,string,string,string
#default,_result,,,,,,,,
,result,table,_start,_stop,_time,_value,_field,_measurement,host
,,0,2020-02-17T22:19:49.747562847Z,2020-02-18T22:19:49.747562847Z,2020-02-18T10:34:08.135814545Z,1.4,usage_user,cpu,host1
,,0,2020-02-17T22:19:49.747562847Z,2020-02-18T22:19:49.747562847Z,2020-02-18T22:08:44.850214724Z,6.6,usage_user,cpu,host1

#group,false,false,true,true,false,false,true,true,true
#datatype,string,long,dateTime:RFC3339,dateTime:RFC3339,dateTime:RFC3339,long,string,string,string
#default,_result,,,,,,,,
,result,table,_start,_stop,_time,_value,_field,_measurement,host
,,1,2020-02-17T22:19:49.747562847Z,2020-02-18T22:19:49.747562847Z,2020-02-18T10:34:08.135814545Z,4,usage_count,cpu,host2
"""


def test_annotated_csv_from_the_documentation() -> None:
    rows = parse_annotated_csv(DOC_CSV)
    assert len(rows) == 3
    assert rows[0] == {"result": "_result", "table": 0, "_start": "2020-02-17T22:19:49.747562847Z",
                       "_stop": "2020-02-18T22:19:49.747562847Z", "_time": "2020-02-18T10:34:08.135814545Z",
                       "_value": 1.4, "_field": "usage_user", "_measurement": "cpu", "host": "host1"}
    assert rows[2]["_value"] == 4 and isinstance(rows[2]["_value"], int) and rows[2]["table"] == 1


def test_query_error_inside_csv_is_raised() -> None:
    text = "#datatype,string,string\n#group,true,true\n#default,,\n,error,reference\n,bucket not found,\n"
    with pytest.raises(HistorianError, match="bucket not found"):
        parse_annotated_csv(text)


def test_pivoted_reading_rows_come_back_exactly() -> None:
    text = (
        "#datatype,string,long,dateTime:RFC3339,string,string,string,string,string,double,string,string\n"
        "#group,false,false,false,false,false,false,false,false,false,false,false\n"
        "#default,_result,,,,,,,,,,\n"
        ",result,table,_time,site,asset,signal,quality,reason,value,value_str,vtype\n"
        ",,0,2026-01-05T00:00:00.000001999Z,s1,P1,status,good,,2,,i\n"
        ",,0,2026-01-05T00:00:01Z,s1,P1,job,bad,garbage,,J-1,s\n"
        ",,0,2026-01-05T00:00:02Z,s1,P1,door,good,,1,,b\n"
        ",,0,2026-01-05T00:00:03Z,s1,P1,temp_c,stale,late,21.5,,f\n"
    )
    got = [reading_from_row(r) for r in parse_annotated_csv(text)]
    assert got == [
        Reading(ts=T + timedelta(microseconds=1), site="s1", asset="P1", signal="status", value=2),
        Reading(ts=T + timedelta(seconds=1), site="s1", asset="P1", signal="job", value="J-1",
                quality=Quality.BAD, reason="garbage"),
        Reading(ts=T + timedelta(seconds=2), site="s1", asset="P1", signal="door", value=True),
        Reading(ts=T + timedelta(seconds=3), site="s1", asset="P1", signal="temp_c", value=21.5,
                quality=Quality.STALE, reason="late"),
    ]
    assert type(got[0].value) is int and type(got[2].value) is bool


def test_series_rows_merge_into_points() -> None:
    rows = [{"_time": "2026-01-05T00:10:00Z", "agg": a, "_value": v} for a, v in
            (("min", 1.0), ("max", 9.0), ("mean", 4.0), ("count", 3))]
    rows += [{"_time": "2026-01-05T00:00:00Z", "agg": a, "_value": v} for a, v in
             (("min", 2.0), ("max", 2.0), ("mean", 2.0), ("count", 1))]
    assert series_points(rows) == (
        SeriesPoint(ts=T, value=2.0, min=2.0, max=2.0, count=1),
        SeriesPoint(ts=T + timedelta(minutes=10), value=4.0, min=1.0, max=9.0, count=3),
    )


def test_token_comes_from_env_or_file(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("TWIN_TEST_TOKEN", "sekret\n")
    assert read_token("TWIN_TEST_TOKEN", None) == "sekret"
    f = tmp_path / "token"
    f.write_text("from-file\n")
    assert read_token("TWIN_TEST_UNSET_TOKEN", f) == "from-file"
    with pytest.raises(HistorianError, match="no InfluxDB token") as info:
        read_token("TWIN_TEST_UNSET_TOKEN", None)
    assert "sekret" not in str(info.value)


def test_checkpoint_json_is_strict() -> None:
    # checkpoints go into a string field: the JSON must not need NaN extensions
    s = SiteState(site=SiteId("s1"), as_of=T)
    assert site_state_to_dict(s)["v"] == 1 and "NaN" not in checkpoint_line(s)


@pytest.mark.parametrize("name", ["connectors.influx.csv", "connectors.influx.query", "connectors.influx.historian"])
def test_usage_examples_of_the_influx_package_run(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name))
    assert result.attempted > 0 and result.failed == 0
