"""The collector's garbage-collector settings (``tune_gc``), checked in a fresh interpreter."""

from __future__ import annotations

import json
import subprocess
import sys

CODE = """
import gc, json
from connectors.collector import tune_gc
before = gc.get_threshold()
tune_gc()
a = []; a.append(a)  # a reference cycle made after startup...
import weakref
class Node: pass
n = Node(); n.self = n; ref = weakref.ref(n); del n, a
gc.collect()  # ...is still collected
print(json.dumps({"before": before, "after": gc.get_threshold(), "frozen": gc.get_freeze_count(),
                  "cycle_freed": ref() is None}))
"""


def test_tune_gc_raises_the_young_threshold_freezes_startup_and_still_collects_cycles() -> None:
    out = subprocess.run([sys.executable, "-c", CODE], check=True, capture_output=True, text=True, timeout=60)
    got = json.loads(out.stdout)
    assert got["before"] == [700, 10, 10]  # CPython's defaults, so the change below is ours
    assert got["after"] == [20_000, 20, 20]
    assert got["frozen"] > 1_000  # the modules and objects built at startup are out of the collections' way
    assert got["cycle_freed"]

