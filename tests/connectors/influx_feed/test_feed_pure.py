"""The pure half of the InfluxDB feed: query text, response parsing, incremental de-duplication, mappings."""

from __future__ import annotations

import doctest
from datetime import UTC, datetime, timedelta

import pytest

import connectors.config.influx_feed as config_module
import connectors.influx.feed as feed_module
from connectors.config.influx_feed import InfluxApi, InfluxConnection, InfluxFeed, InfluxMapping
from connectors.influx.csv import parse_time_ns
from connectors.influx.feed import (
    FeedError,
    FeedReader,
    FieldPoint,
    parse_influxql_response,
    points_from_flux_rows,
)
from connectors.influx.feed import flux_rows as parse_annotated_csv
from connectors.influx.query import QueryGroup, flux_query, influxql_query, plan_groups
from twin.frozen import FrozenDict
from twin.readings import Quality

T0_NS = 1767600000000000000  # 2026-01-05T08:00:00Z
T0 = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
S = 1_000_000_000


def test_docstring_examples() -> None:
    for module in (feed_module, config_module):
        result = doctest.testmod(module)
        assert result.failed == 0 and result.attempted > 0


def mapping(**kw: object) -> InfluxMapping:
    base: dict[str, object] = {"measurement": "printer", "field": "state", "signal": "status", "asset": "P1",
                               "assets": frozenset({"P1"})}
    return InfluxMapping(**{**base, **kw})  # type: ignore[arg-type]


def feed(*mappings: InfluxMapping, overlap_s: float = 30.0, lookback_s: float = 300.0) -> InfluxFeed:
    conn = InfluxConnection(api=InfluxApi.V1, url="http://127.0.0.1:8086", database="telegraf")
    return InfluxFeed(id="f", site="s1", connection=conn, mappings=mappings, overlap_s=overlap_s,
                      lookback_s=lookback_s)


# --- InfluxQL --------------------------------------------------------------------------------------


def test_influxql_groups_fields_per_measurement_and_filter_and_quotes_every_name() -> None:
    ms = [
        mapping(field="state", tags=FrozenDict({"host": "p-1"})),
        mapping(field="parts_ok", signal="good_count", tags=FrozenDict({"host": "p-1"})),
        mapping(field="state", asset="P2", assets=frozenset({"P2"}), tags=FrozenDict({"host": "p-2"})),
        mapping(measurement='we ird,"m"', field="f'i", tags=FrozenDict({"ta g": "it's", "b\\k": "x"}),
                signal="nozzle_temp_c"),
    ]
    groups = plan_groups(ms)
    assert [g.fields for g in groups] == [("state", "parts_ok"), ("state",), ("f'i",)]
    assert influxql_query(groups, T0_NS).split("; ") == [
        'SELECT "state"::field, "parts_ok"::field FROM "printer" WHERE time > 1767600000000000000 '
        "AND \"host\"::tag = 'p-1' GROUP BY *",
        'SELECT "state"::field FROM "printer" WHERE time > 1767600000000000000 AND "host"::tag = \'p-2\' GROUP BY *',
        # identifiers in double quotes (\" and \\ escaped), strings in single quotes (\' and \\ escaped)
        'SELECT "f\'i"::field FROM "we ird,\\"m\\"" WHERE time > 1767600000000000000 '
        "AND \"b\\\\k\"::tag = 'x' AND \"ta g\"::tag = 'it\\'s' GROUP BY *",
    ]


def test_flux_filters_each_group_and_starts_one_nanosecond_after_the_cursor() -> None:
    groups = [QueryGroup(measurement="printer", tags=FrozenDict({"host": "p-1"}), fields=("state", "parts_ok")),
              QueryGroup(measurement='odd "m"', tags=FrozenDict(), fields=("${x}",))]
    assert flux_query('tele"graf', groups, T0_NS + 999_999_999) == "\n".join([
        'from(bucket: "tele\\"graf")',
        "  |> range(start: 2026-01-05T08:00:01.000000000Z)",
        '  |> filter(fn: (r) => (r._measurement == "printer" and r["host"] == "p-1" and '
        '(r._field == "state" or r._field == "parts_ok")) or (r._measurement == "odd \\"m\\"" and '
        '(r._field == "\\${x}")))',
        '  |> drop(columns: ["_start", "_stop"])',
    ])


# --- v1 JSON -------------------------------------------------------------------------------------------


def test_v1_json_documented_shape_with_rfc3339_times_tags_and_nulls() -> None:
    # the shape of the InfluxDB 1.x /query documentation, with GROUP BY * tags and a second statement
    body = """{"results":[{"statement_id":0,"series":[{"name":"cpu","tags":{"host":"server01","region":""},
      "columns":["time","value","state"],
      "values":[["2015-01-29T21:55:43.702900257Z",2,null],["2015-01-29T21:55:43.702900257+01:00",0.55,"RUN"]]}]},
      {"statement_id":1,"error":"field type conflict"}]}"""
    res = parse_influxql_response(body)
    assert [r.statement_id for r in res] == [0, 1] and res[1].error == "field type conflict"
    first = parse_time_ns("2015-01-29T21:55:43.702900257Z")
    assert first == 1422568543702900257
    assert res[0].points == (
        FieldPoint(measurement="cpu", tags=FrozenDict({"host": "server01"}), field="value", time_ns=first, value=2),
        FieldPoint(measurement="cpu", tags=FrozenDict({"host": "server01"}), field="value",
                   time_ns=first - 3600 * S, value=0.55),  # +01:00 is one hour earlier in UTC
        FieldPoint(measurement="cpu", tags=FrozenDict({"host": "server01"}), field="state",
                   time_ns=first - 3600 * S, value="RUN"),
    )


@pytest.mark.parametrize(("body", "reason"), [
    ("<html>502</html>", "malformed response: not JSON"),
    ('{"error":"error parsing query: found SELEC"}', "influx query failed: error parsing query: found SELEC"),
    ('{"results": 3}', "malformed response: no 'results' list"),
    ('{"results":[{"series":[{"name":"m","columns":["value"],"values":[[1]]}]}]}',
     "malformed response: results[0].series[0].columns does not start with 'time'"),
    ('{"results":[{"series":[{"name":"m","columns":["time","v"],"values":[[1]]}]}]}',
     "malformed response: results[0].series[0].values[0] does not match columns"),
    ('{"results":[{"series":[{"name":"m","columns":["time","v"],"values":[["yesterday",1]]}]}]}',
     "malformed response: results[0].series[0].values[0][0]: not an RFC 3339 time: 'yesterday'"),
])
def test_v1_errors_and_malformed_answers_raise_with_a_reason(body: str, reason: str) -> None:
    with pytest.raises(FeedError) as info:
        parse_influxql_response(body)
    assert info.value.reason.startswith(reason)


# --- v2 annotated CSV ---------------------------------------------------------------------------------

# The annotated CSV example of the InfluxDB 2.x documentation (reference/syntax/annotated-csv), as a
# multi-table answer: tables separated by an empty line, each with its own annotations; #default
# fills the empty "result" cells with "_result".
DOC_CSV = """\
#group,false,false,true,true,false,false,true,true,true
#datatype,string,long,dateTime:RFC3339,dateTime:RFC3339,dateTime:RFC3339,double,string,string,string
#default,_result,,,,,,,,
,result,table,_start,_stop,_time,_value,_field,_measurement,host
,,0,2022-12-31T05:41:24Z,2023-01-31T05:41:24.001Z,2023-01-01T00:52:00Z,15.43,mem,m,A
,,1,2022-12-31T05:41:24Z,2023-01-31T05:41:24.001Z,2023-01-01T00:52:00.000000001Z,59.25,mem,m,B

#group,false,false,true,true,false,false,true,true,true
#datatype,string,long,dateTime:RFC3339,dateTime:RFC3339,dateTime:RFC3339,string,string,string,string
#default,_result,,,,,,,,
,result,table,_start,_stop,_time,_value,_field,_measurement,host
,,2,2022-12-31T05:41:24Z,2023-01-31T05:41:24.001Z,2023-01-01T00:52:00Z,RUN,state,m,"A, left"
#group,false,false,true,true,false,false,true,true
#datatype,string,long,dateTime:RFC3339,dateTime:RFC3339,dateTime:RFC3339,long,string,string
#default,_result,,,,,,,
,result,table,_start,_stop,_time,_value,_field,_measurement
,,3,2022-12-31T05:41:24Z,2023-01-31T05:41:24.001Z,2023-01-01T00:52:10Z,42,parts,m
"""


def test_annotated_csv_several_tables_typed_by_their_own_annotations() -> None:
    rows = parse_annotated_csv(DOC_CSV)
    assert [(r["result"], r["table"], r["_value"]) for r in rows] == [
        ("_result", 0, 15.43), ("_result", 1, 59.25), ("_result", 2, "RUN"), ("_result", 3, 42)]
    points = points_from_flux_rows(rows)
    t = parse_time_ns("2023-01-01T00:52:00Z")
    assert points == [
        FieldPoint(measurement="m", tags=FrozenDict({"host": "A"}), field="mem", time_ns=t, value=15.43),
        FieldPoint(measurement="m", tags=FrozenDict({"host": "B"}), field="mem", time_ns=t + 1, value=59.25),
        FieldPoint(measurement="m", tags=FrozenDict({"host": "A, left"}), field="state", time_ns=t, value="RUN"),
        FieldPoint(measurement="m", tags=FrozenDict(), field="parts", time_ns=t + 10 * S, value=42),
    ]


def test_annotated_csv_error_form_raises_with_the_message() -> None:
    # the documented error answer: a table with "error" and "reference" columns
    text = "#datatype,string,string\n#group,true,true\n#default,,\n,error,reference\n" \
           ",\"failed to execute query: bucket \"\"tele\"\" not found\",897\n"
    with pytest.raises(FeedError) as info:
        parse_annotated_csv(text)
    assert info.value.reason == 'influx query failed: failed to execute query: bucket "tele" not found (reference 897)'


def test_annotated_csv_bad_cell_is_a_malformed_answer() -> None:
    with pytest.raises(FeedError) as info:
        parse_annotated_csv("#datatype,string,long,double\n,result,table,_value\n,,0,hot\n")
    assert info.value.reason.startswith("malformed response: annotated CSV: could not convert string to float")


def test_flux_rows_then_readings_like_v1() -> None:
    reader = FeedReader(feed(mapping(measurement="m", field="state", asset_tag="host", asset=None,
                                     assets=frozenset({"A, left"}), enum=FrozenDict({"RUN": 2}))))
    readings = reader.readings(points_from_flux_rows(parse_annotated_csv(DOC_CSV)), T0_NS)
    assert [(r.asset, r.signal, r.value, r.ts) for r in readings] == [
        ("A, left", "status", 2, datetime(2023, 1, 1, 0, 52, tzinfo=UTC))]


# --- incremental reading --------------------------------------------------------------------------------


def pt(t_ns: int, value: object = 1, host: str = "p1") -> FieldPoint:
    return FieldPoint(measurement="printer", tags=FrozenDict({"machine": host}), field="parts_ok", time_ns=t_ns,
                      value=value)  # type: ignore[arg-type]


def test_reader_cursor_overlap_and_deduplication() -> None:
    m = mapping(field="parts_ok", signal="good_count", asset=None, asset_tag="machine",
                assets=frozenset({"p1", "p2"}))
    reader = FeedReader(feed(m, overlap_s=10, lookback_s=60))
    now = T0_NS + 100 * S
    assert reader.after_ns(now) == T0_NS + 40 * S  # first query: lookback_s before the clock
    out = reader.readings([pt(T0_NS + 90 * S, 5), pt(T0_NS + 95 * S, 6), pt(T0_NS + 99 * S, 9, "p9")], now)
    assert [(r.asset, r.value) for r in out] == [("p1", 5), ("p1", 6)]  # p9 is not one of the assets
    assert reader.cursor_ns == T0_NS + 99 * S and reader.after_ns(now) == T0_NS + 89 * S  # newest - overlap
    # the re-read overlap brings the same points again, and a late one: only the late one is new
    out = reader.readings([pt(T0_NS + 90 * S, 5), pt(T0_NS + 92 * S, 7, "p2"), pt(T0_NS + 95 * S, 6)], now)
    assert [(r.asset, r.value, r.ts) for r in out] == [("p2", 7, T0 + timedelta(seconds=92))]
    assert reader.duplicates == 2
    # a point in the future moves the cursor only up to the clock: other series are not skipped
    reader.readings([pt(T0_NS + 3600 * S, 1)], now)
    assert reader.cursor_ns == now


def test_reader_sorts_readings_by_time_and_marks_unusable_values_bad() -> None:
    m = mapping(field="parts_ok", signal="good_count", asset="P1", scale=0.5)
    reader = FeedReader(feed(m))
    out = reader.readings([pt(T0_NS + 2 * S, "n/a"), pt(T0_NS + S, 10)], T0_NS + 10 * S)
    assert [(r.value, r.quality, r.reason) for r in out] == [
        (5.0, Quality.GOOD, ""),
        (None, Quality.BAD, "value 'n/a' of field 'parts_ok' is not a number (scale/offset need one)"),
    ]


@pytest.mark.parametrize(("raw", "expected"), [
    ("RUN", (2, "")), (True, (1, "")), (False, (0, "")), (3.0, (3, "")),
    ("run", (None, "value 'run' not in the enum map of field 'state'")),
])
def test_enum_maps_text_bools_and_whole_numbers(raw: object, expected: tuple[object, str]) -> None:
    m = mapping(enum=FrozenDict({"RUN": 2, "true": 1, "false": 0, "3": 3}))
    assert m.convert(raw) == expected  # type: ignore[arg-type]


def test_scale_and_offset() -> None:
    assert mapping(scale=0.001, offset=-1.0).convert(1500) == (0.5, "")
    assert mapping().convert("as is") == ("as is", "")
