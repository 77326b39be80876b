"""InfluxDB line protocol: how readings, events and checkpoints are written (store-and-forward's payload).

Pure, tested on exact text. Data model in the bucket:

* ``reading`` — tags ``site``, ``asset``, ``signal``, ``quality``; fields ``value`` (float, for
  numbers and bools), ``value_str`` (strings), ``vtype`` (``i`` int, ``f`` float, ``b`` bool,
  ``s`` str, ``n`` none, ``nan``) and ``reason``. ``vtype`` lets a reading come back exactly.
* ``event`` — tags ``site``, ``asset``, ``kind``; fields ``message``, ``data`` (JSON). The
  timestamp is the event's microsecond plus its index in the batch in the nanosecond digits, so two
  events of one instant do not overwrite each other.
* ``checkpoint`` — tag ``site``; field ``state`` (the codec's JSON of a ``SiteState``).

A point is identified by measurement, tags and timestamp, so sending a batch twice stores it once:
that is what makes store-and-forward exactly once.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from datetime import datetime

from twin.codec import event_to_dict, site_state_to_dict
from twin.readings import Reading, Value
from twin.state import Event, SiteState

__all__ = ["NS_PER_US", "batch_lines", "checkpoint_line", "event_line", "reading_line"]

NS_PER_US = 1000


def _tag(text: str) -> str:
    return text.replace("\\", "\\\\").replace(",", "\\,").replace("=", "\\=").replace(" ", "\\ ").replace("\n", "\\n")


def _str_field(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _ns(ts: datetime) -> int:
    from connectors.store import to_us  # one definition of the epoch arithmetic

    return to_us(ts) * NS_PER_US


def _vtype(v: Value) -> str:
    if v is None:
        return "n"
    if isinstance(v, bool):
        return "b"
    if isinstance(v, int):
        return "i"
    if isinstance(v, float):
        return "nan" if math.isnan(v) else "f"
    return "s"


def reading_line(r: Reading) -> str:
    """One reading as a line of InfluxDB line protocol (see the module docstring for its layout)."""
    vt = _vtype(r.value)
    if vt in ("i", "f", "b"):
        number = float(r.value)  # type: ignore[arg-type]
        value = repr(number) if math.isfinite(number) else None
    else:
        value = None
    fields = []
    if value is not None:
        fields.append(f"value={value}")
    elif vt == "s":
        fields.append(f"value_str={_str_field(str(r.value))}")
    elif vt == "f":  # ±inf: line protocol has no infinity, keep it as text
        fields.append(f"value_str={_str_field(repr(r.value))}")
    fields.append(f'vtype="{vt}"')
    fields.append(f"reason={_str_field(r.reason)}")
    return (
        f"reading,site={_tag(r.site)},asset={_tag(r.asset)},signal={_tag(r.signal)},quality={r.quality.value} "
        f"{','.join(fields)} {_ns(r.ts)}"
    )


def event_line(e: Event, index: int = 0) -> str:
    """One event as line protocol; ``index`` (its place in the batch) goes into the nanoseconds."""
    data = json.dumps(event_to_dict(e)["data"], allow_nan=False)
    return (
        f"event,site={_tag(e.site)},asset={_tag(e.asset)},kind={e.kind.value} "
        f"message={_str_field(e.message)},data={_str_field(data)} {_ns(e.ts) + index % NS_PER_US}"
    )


def checkpoint_line(s: SiteState) -> str:
    """A site state checkpoint as line protocol."""
    state = json.dumps(site_state_to_dict(s), allow_nan=False)
    return f"checkpoint,site={_tag(s.site)} state={_str_field(state)} {_ns(s.as_of)}"


def batch_lines(readings: Sequence[Reading], states: Sequence[SiteState], events: Sequence[Event]) -> str:
    """Everything of one historian write as line protocol, one point per line."""
    lines = [reading_line(r) for r in readings]
    lines += [checkpoint_line(s) for s in states]
    lines += [event_line(e, i) for i, e in enumerate(events)]
    return "\n".join(lines)
