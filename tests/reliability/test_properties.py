"""Bad input, property-based: the register decoder and the scenario parser never raise a traceback.

* Decoder (``connectors.modbus.points``): for any point the configuration allows (type, byte order,
  bit, length, scale, offset, enum) and any register words, ``decode_point`` returns a value or
  ``(None, reason)``, never an exception, and never a non-finite number as a good value; and
  ``encode_point`` → ``decode_point`` gives the value back (to the precision of the type and scale).
* Scenario parser (``twin.sim.scenario``): thousands of mutations of a scenario holding every kind of
  intervention, and arbitrary text, are each accepted or rejected with a ``ConfigError`` whose every
  line names the source file and the path of the problem.

(The configuration loader has the same property in ``tests/connectors/config/test_config_fuzz.py``.)
"""

from __future__ import annotations

import math
import struct
import tomllib
from typing import Any

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from connectors.modbus.points import decode_point, encode_point, encode_raw
from connectors.modbus.spec import ByteOrder, DataType, ModbusPoint, RegisterKind
from tests.toml_mutation import mutations
from tests.twin.sim.helpers import tiny_fleet
from twin.errors import ConfigError
from twin.frozen import FrozenDict
from twin.sim.scenario import Scenario, loads_scenario

# ------------------------------------------------------------------------------------------ decoder

WORD_TYPES = [t for t in DataType if t is not DataType.BOOL]


@st.composite
def points(draw: st.DrawFn) -> ModbusPoint:
    """A point as ``connectors.config.modbus`` may build it (scale non-zero and finite, enum on integers)."""
    bit_table = draw(st.booleans()) and draw(st.booleans())  # a quarter of the points: coils / discrete
    if bit_table:
        kind = draw(st.sampled_from([RegisterKind.COIL, RegisterKind.DISCRETE]))
        return ModbusPoint(asset="A", signal="s", kind=kind, address=draw(st.integers(0, 20)), type=DataType.BOOL)
    typ = draw(st.sampled_from(WORD_TYPES))
    kw: dict[str, Any] = {}
    if typ is DataType.BIT:
        kw["bit"] = draw(st.integers(0, 15))
    elif typ is DataType.STRING:
        kw["length"] = draw(st.integers(1, 8))
        kw["byte_order"] = draw(st.sampled_from(ByteOrder))
    else:
        kw["byte_order"] = draw(st.sampled_from(ByteOrder))
        if draw(st.booleans()):
            mag = draw(st.floats(min_value=1e-6, max_value=1e6))
            kw["scale"] = mag if draw(st.booleans()) else -mag
            kw["offset"] = draw(st.floats(min_value=-1e9, max_value=1e9))
        elif typ not in (DataType.FLOAT32, DataType.FLOAT64) and draw(st.booleans()):
            lo, hi = _int_range(typ)  # (the loader does not check that enum codes fit the type: noted)
            codes = draw(st.lists(st.integers(max(lo, -5), min(hi, 70000)), min_size=1, max_size=5, unique=True))
            kw["enum"] = FrozenDict({c: f"label{c}" for c in codes})
    return ModbusPoint(asset="A", signal="s", kind=draw(st.sampled_from([RegisterKind.HOLDING, RegisterKind.INPUT])),
                       address=draw(st.integers(0, 20)), type=typ, **kw)


@settings(max_examples=1000, deadline=None)
@given(points(), st.data())
def test_decoder_returns_a_value_or_a_reason_for_any_registers(point: ModbusPoint, data: st.DataObject) -> None:
    start = data.draw(st.integers(0, point.address), label="block start")
    n = point.address - start + data.draw(st.integers(0, point.count + 2), label="words after")  # may be short
    if point.kind.is_bit:
        words: list[Any] = data.draw(st.lists(st.booleans(), min_size=n, max_size=n))
    else:
        words = data.draw(st.lists(st.integers(0, 0xFFFF), min_size=n, max_size=n))
    value, reason = decode_point(point, words, start)  # never raises
    assert isinstance(reason, str)
    if reason:
        assert value is None  # a BAD reading carries no value, only its reason
    else:
        assert value is not None
        if isinstance(value, float):
            assert math.isfinite(value)  # NaN, infinity, overflow after scaling: never GOOD
        if point.enum:
            assert value in point.enum.values()
    if len(words) - (point.address - start) < point.count:
        assert reason, "too few registers must be a reason, not a value"


def _values_for(point: ModbusPoint) -> st.SearchStrategy[Any]:
    typ = point.type
    if point.kind.is_bit or typ in (DataType.BOOL, DataType.BIT):
        return st.booleans()
    if typ is DataType.STRING:
        alphabet = st.characters(min_codepoint=33, max_codepoint=126)
        return st.text(alphabet=alphabet, max_size=2 * point.length)
    if point.enum:
        return st.sampled_from(sorted(point.enum.values()))
    if typ is DataType.FLOAT32:
        return st.floats(width=32, allow_nan=False, allow_infinity=False)
    if typ is DataType.FLOAT64:
        return st.floats(allow_nan=False, allow_infinity=False)
    return st.integers(*_int_range(typ))


def _int_range(typ: DataType) -> tuple[int, int]:
    bits = struct.calcsize(">" + {"INT16": "h", "UINT16": "H", "INT32": "i", "UINT32": "I", "INT64": "q",
                                  "UINT64": "Q"}[typ.value]) * 8
    return (0, 2**bits - 1) if typ.value.startswith("U") else (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1)


@settings(max_examples=1500, deadline=None)
@given(points(), st.data())
def test_encode_then_decode_gives_the_value_back(point: ModbusPoint, data: st.DataObject) -> None:
    # Raw values (scale 1, offset 0) round-trip exactly; scaled ones to the nearest step of the scale.
    value = data.draw(_values_for(point), label="value")
    scaled = point.scale != 1.0 or point.offset != 0.0
    if scaled:
        assume(not isinstance(value, str))
        if point.type not in (DataType.FLOAT32, DataType.FLOAT64):
            assume(abs(value) < 2**52)  # a float holds it exactly, so (raw * scale) / scale rounds back to raw
        value = float(value) * point.scale + point.offset  # a value the point can hold
        if point.type not in (DataType.FLOAT32, DataType.FLOAT64):
            assume(math.isfinite(value))
    words = encode_point(point, value)
    if point.type is DataType.BIT:  # encode_point gives the bit as 0/1; the register holds it at ``bit``
        words = [words[0] << (point.bit or 0)]
    got, reason = decode_point(point, words, point.address)
    if point.type is DataType.FLOAT32 and not scaled:
        assert reason == "" and got == value  # drawn as a float32: exact
    elif scaled:
        if reason:  # scaled beyond what a float holds (e.g. 3e38 * 1e6): BAD, never a wrong GOOD
            assert got is None and reason
            return
        assert isinstance(got, float)
        raw_step = abs(point.scale) if point.type not in (DataType.FLOAT32, DataType.FLOAT64) else 0.0
        rel = 1e-6 if point.type is DataType.FLOAT32 else 1e-9
        assert math.isclose(got, value, rel_tol=rel, abs_tol=raw_step / 2 + 1e-6 * abs(point.offset) + 1e-9), (
            got, value)
    elif point.type is DataType.STRING:
        assert (got, reason) == (value, "")
    else:
        assert (got, reason) == (value, "")


@given(st.sampled_from([DataType.FLOAT32, DataType.FLOAT64]), st.sampled_from(ByteOrder),
       st.sampled_from([math.nan, math.inf, -math.inf]))
def test_non_finite_floats_are_bad_in_every_byte_order(typ: DataType, order: ByteOrder, bad: float) -> None:
    p = ModbusPoint(asset="A", signal="s", kind=RegisterKind.HOLDING, address=0, type=typ, byte_order=order)
    value, reason = decode_point(p, encode_raw(typ, order, bad))
    assert value is None and reason.startswith("not a number")


# ------------------------------------------------------------------------------------------ scenarios

FLEET = tiny_fleet()
BASE = """
name = "every intervention"
description = "one of each"
[[machine_down]]
machine = "P1"
start_in_h = 4
duration_h = 8
[[machine_down]]
machine = "P2"
site = "s1"
start = 2026-01-06T06:00:00Z
duration_h = 2
[[machines_added]]
site = "s1"
template = "printer"
count = 1
[[machines_removed]]
site = "s1"
template = "packer"
count = 1
[[cycle_time]]
role = "print"
factor = 1.2
[[cycle_time]]
machine = "P1"
site = "s1"
factor = 0.9
[[demand]]
factor = 1.3
site = "s1"
product = "widget"
start_in_h = 0
end_in_h = 48
[[shipment_delay]]
sku = "SUB"
delay_d = 5
[[lead_time]]
supplier = "overseas"
lead_time_d = 7
lead_time_sd_d = 1
transport = "air"
[[reorder_policy]]
sku = "FIL"
reorder_point = 5
reorder_qty = 20
[[shifts]]
site = "s1"
holidays = [2026-12-25]
[[shifts.shift]]
name = "day"
weekdays = [0, 1, 2, 3, 4, 5]
start = "06:00"
end = "22:00"
"""
BASE_DICT: dict[str, Any] = tomllib.loads(BASE)

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(["P1", "P9", "s1", "s2", "printer", "FIL", "widget", "print", "air", "06:00", "25:00",
                     "2026-01-06T06:00:00Z", "2026-01-06T06:00:00", "", "local", "overseas"]),
    st.text(max_size=12),
    st.lists(st.integers(min_value=-2, max_value=8), max_size=4),
    st.dictionaries(st.text(max_size=5), st.integers(min_value=-3, max_value=3), max_size=2),
    st.lists(st.dictionaries(st.sampled_from(["name", "weekdays", "start", "end", "x"]),
                             st.one_of(st.text(max_size=5), st.integers(-1, 8)), max_size=3), max_size=2),
)


def mutated() -> st.SearchStrategy[str]:
    return mutations(BASE_DICT, scalars, actions=("replace", "delete", "add", "duplicate"))


def _check_error(exc: ConfigError, source: str) -> None:
    assert exc.problems, "a ConfigError must list at least one problem"
    for line in str(exc).splitlines():
        assert line.startswith(f"{source}: ") or line.endswith(f"problem(s) in {source}:"), line
    for p in exc.problems:
        assert p.message


def test_the_base_scenario_is_valid() -> None:
    s = loads_scenario(BASE, "base.toml", FLEET)
    assert len(s.interventions) == 11  # 2 machine_down, 2 cycle_time, one of each other but overflow (one site)


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated(), st.booleans())
def test_mutated_scenario_is_accepted_or_rejected_with_paths(text: str, with_fleet: bool) -> None:
    try:
        s = loads_scenario(text, "fuzz.toml", FLEET if with_fleet else None)
    except ConfigError as exc:
        _check_error(exc, "fuzz.toml")
        return
    assert isinstance(s, Scenario) and isinstance(s.name, str)


@settings(max_examples=500, deadline=None)
@given(st.text(max_size=300))
def test_arbitrary_text_is_a_config_error_or_a_scenario(text: str) -> None:
    try:
        loads_scenario(text, "junk.toml", FLEET)
    except ConfigError as exc:
        _check_error(exc, "junk.toml")


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.lists(scalars, max_size=3), scalars, st.dictionaries(st.text(max_size=8), scalars, max_size=4)))
def test_a_parsed_document_of_any_shape_is_handled(doc: Any) -> None:
    # parse_scenario may be handed JSON from a browser, not only TOML: any shape at all
    from twin.sim.scenario import parse_scenario
    try:
        parse_scenario(doc, "api", FLEET)
    except ConfigError as exc:
        _check_error(exc, "api")
