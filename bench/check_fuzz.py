"""``twin check`` on N hypothesis-generated corruptions of examples/fleet.toml's BYTES: never a traceback.

    .venv/bin/python bench/check_fuzz.py [--examples 10000] [--processes 12] [--seed 18]

Each corruption applies 1 to 4 operations to the file's bytes: a bit flipped, a byte replaced, random
bytes inserted, a run deleted, the file cut short, invalid UTF-8 spliced in (lone continuation bytes,
truncated sequences, surrogates, overlongs, 0xff), nesting 50 to 5,000 deep (arrays, inline tables,
table headers) put in place of a value or anywhere, and huge numbers in place of a value (4,300 to
100,000 digits, 1e400, 0x with 5,000 digits, 10-digit exponents). Every example goes through
``app.main(["check", FILE])`` in this process (the code path of ``twin check``, argument
parsing included); ``--processes`` of them (the first rejected ones, a few valid ones) also through the
real ``twin check`` process (``python -m app``).

Asserted for every example: no exception escapes ``main`` (a traceback), exit 0 or 2, and for exit 2
a non-empty stderr whose every unindented line starts with ``FILE: `` (the house ``file: path: what``
form), with no "Traceback" anywhere. Reported: valid / rejected / tracebacks / other failures, the
distinct first error kinds, time per example. Exit 1 if any example failed.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import re
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app import main as twin  # noqa: E402

ORIGINAL = (ROOT / "examples" / "fleet.toml").read_bytes()
VALUE_AT = [m.end() for m in re.finditer(rb"= ", ORIGINAL)]  # where a value starts

_BAD_UTF8 = [b"\xff", b"\xfe", b"\x80", b"\xbf\xbf", b"\xc3", b"\xe2\x82", b"\xf0\x9f\x98", b"\xed\xa0\x80",
             b"\xc0\xaf", b"\xe0\x80\xaf", b"\xf4\x90\x80\x80", b"\xf8\x88\x80\x80\x80"]


def _nesting(kind: str, depth: int) -> bytes:
    if kind == "array":
        return b"[" * depth + b"1" + b"]" * depth
    if kind == "array-open":
        return b"[" * depth
    if kind == "table":
        return b"{a=" * depth + b"1" + b"}" * depth
    return b"[" + b"a." * depth + b"b]\n"  # a table header ``depth`` keys deep


def _number(kind: str, digits: int) -> bytes:
    if kind == "int":
        return b"9" * digits
    if kind == "neg":
        return b"-1" + b"0" * digits
    if kind == "float":
        return b"1" * digits + b".5"
    if kind == "exp":
        return b"1e" + b"9" * min(digits, 10)
    if kind == "hex":
        return b"0x" + b"f" * digits
    return b"1e400"


@st.composite
def corrupted(draw: st.DrawFn) -> tuple[bytes, tuple[str, ...]]:
    """The example file's bytes with 1 to 4 corruptions, and the names of the operations applied."""
    data = bytearray(ORIGINAL)
    ops = []
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        op = draw(st.sampled_from(["flip", "replace", "insert", "delete", "cut", "utf8", "nest", "number"]))
        ops.append(op)
        at = draw(st.integers(min_value=0, max_value=len(data)))
        if op == "flip" and at < len(data):
            data[at] ^= 1 << draw(st.integers(min_value=0, max_value=7))
        elif op == "replace" and at < len(data):
            data[at] = draw(st.integers(min_value=0, max_value=255))
        elif op == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=16))
        elif op == "delete":
            del data[at:at + draw(st.integers(min_value=1, max_value=200))]
        elif op == "cut":
            del data[at:]
        elif op == "utf8":
            data[at:at] = draw(st.sampled_from(_BAD_UTF8))
        else:  # nest / number: in place of a value of the original (if the offset still lies inside the data)
            if op == "nest":
                new = _nesting(draw(st.sampled_from(["array", "array-open", "table", "header"])),
                               draw(st.sampled_from([50, 200, 499, 500, 1000, 5000])))
            else:
                new = _number(draw(st.sampled_from(["int", "neg", "float", "exp", "hex", "inf"])),
                              draw(st.sampled_from([4300, 4301, 5000, 20000, 100000])))
            if draw(st.booleans()):
                start = draw(st.sampled_from(VALUE_AT))
                if start < len(data):
                    end = data.find(b"\n", start)
                    end = len(data) if end < 0 else end
                    data[start:end] = new
                    continue
            data[at:at] = new
    return bytes(data), tuple(ops)


def first_error_kind(err: str, path: Path) -> str:
    """The problem's text without the file, the key path's indices and the offending value."""
    lines = err.strip().splitlines()
    first = (lines[1] if lines[0].endswith(f" problem(s) in {path}:") else lines[0]).removeprefix(f"{path}: ")
    first = re.sub(r"\(got .*", "(got ...)", first)
    first = re.sub(r"\(at line \d+, column \d+\)", "(at line L, column C)", first)
    first = re.sub(r"(?<![\w.-])\d+(?![\w.])", "N", first)
    return first[:90]


def check_named(code: int, err: str, path: Path) -> str:
    """'' when a ``twin check`` outcome is right, else what is wrong with it."""
    if code == 0:
        return ""
    if code != 2:
        return f"exit {code}"
    lines = err.strip().splitlines()
    if lines and lines[0] == f"{len(lines) - 1} problem(s) in {path}:":  # twin.errors.ConfigError's header
        lines = lines[1:]
    if not lines:
        return "exit 2 without a reason"
    if "Traceback" in err:
        return "a traceback in stderr"
    unnamed = [ln for ln in lines if not ln.startswith(f"{path}: ")]
    if unnamed:
        return f"a line not naming the file: {unnamed[0][:120]!r}"
    return ""


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--examples", type=int, default=10_000)
    ap.add_argument("--processes", type=int, default=12, help="examples also run through the real twin process")
    ap.add_argument("--seed", type=int, default=18)
    ap.add_argument("--keep", type=Path, default=Path(tempfile.gettempdir()) / "check-fuzz-failures",
                    help="folder for the first failing examples (default: $TMPDIR/check-fuzz-failures)")
    args = ap.parse_args(argv)

    workdir = Path(tempfile.mkdtemp(prefix="twin-check-fuzz-"))
    path = workdir / "plant.toml"
    seen: set[bytes] = set()
    outcomes: Counter[str] = Counter()
    kinds: Counter[str] = Counter()
    causes: Counter[str] = Counter()
    op_counts: Counter[str] = Counter()
    failures: list[tuple[str, bytes]] = []
    for_process: list[tuple[bytes, int]] = []
    durations: list[float] = []
    sizes: list[int] = []

    @settings(max_examples=args.examples, deadline=None, database=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))
    @seed(args.seed)
    @given(corrupted())
    def one(example: tuple[bytes, tuple[str, ...]]) -> None:
        data, ops = example
        outcomes["examples"] += 1
        if data in seen:
            outcomes["duplicates"] += 1
        seen.add(data)
        op_counts.update(ops)
        sizes.append(len(data))
        path.write_bytes(data)
        out, err = io.StringIO(), io.StringIO()
        t = time.perf_counter()
        try:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                code = twin(["check", str(path)])
        except BaseException as exc:  # a traceback: exactly what is counted here
            durations.append(time.perf_counter() - t)
            outcomes["tracebacks"] += 1
            frames = [f for f in traceback.extract_tb(exc.__traceback__) if "/site-packages/" not in f.filename]
            where = f"{Path(frames[-1].filename).name}:{frames[-1].lineno}" if frames else "?"
            causes[f"{type(exc).__name__} at {where}: {str(exc)[:70]}"] += 1
            failures.append((traceback.format_exc(limit=4), data))
            return
        durations.append(time.perf_counter() - t)
        wrong = check_named(code, err.getvalue(), path)
        if wrong:
            outcomes["wrong outcome"] += 1
            failures.append((wrong, data))
            return
        outcomes["valid (exit 0)" if code == 0 else "rejected (exit 2, named)"] += 1
        if code == 2:
            kinds[first_error_kind(err.getvalue(), path)] += 1
        if len(for_process) < args.processes and (code == 2 or sum(c == 0 for _, c in for_process) < 2):
            for_process.append((data, code))

    t0 = time.perf_counter()
    one()
    wall = time.perf_counter() - t0

    proc_bad = 0
    t1 = time.perf_counter()
    for i, (data, code) in enumerate(for_process):
        p = workdir / f"process-{i}.toml"
        p.write_bytes(data)
        r = subprocess.run([sys.executable, "-m", "app", "check", str(p)], cwd=ROOT,
                           capture_output=True, text=True, timeout=120)
        wrong = check_named(r.returncode, r.stderr, p) or ("" if r.returncode == code else
                                                          f"exit {r.returncode} in a process, {code} in-process")
        if wrong:
            proc_bad += 1
            failures.append((f"process: {wrong}", data))
    proc_wall = time.perf_counter() - t1
    shutil.rmtree(workdir, ignore_errors=True)

    n = outcomes["examples"]
    durations.sort()
    print(f"\ntwin check on {n:,} corruptions of examples/fleet.toml ({len(ORIGINAL):,} bytes), hypothesis seed "
          f"{args.seed}\n")
    rows = [
        ("examples generated / distinct", f"{n:,} / {n - outcomes['duplicates']:,}"),
        ("  sizes, bytes: min / median / max",
         f"{min(sizes):,} / {sorted(sizes)[len(sizes) // 2]:,} / {max(sizes):,}"),
        ("  operations applied", ", ".join(f"{k} {v:,}" for k, v in sorted(op_counts.items()))),
        ("valid (exit 0)", f"{outcomes['valid (exit 0)']:,}"),
        ("rejected (exit 2, every line naming the file)", f"{outcomes['rejected (exit 2, named)']:,}"),
        ("tracebacks (an exception out of main)", f"{outcomes['tracebacks']}"),
        ("other wrong outcomes (exit not 0/2, unnamed line)", f"{outcomes['wrong outcome']}"),
        ("distinct first-error kinds", f"{len(kinds)}"),
        ("time in-process: total / per example mean / p99 / max",
         f"{wall:.0f} s / {sum(durations) / max(1, n) * 1e3:.0f} ms / "
         f"{durations[min(len(durations) - 1, int(0.99 * len(durations)))] * 1e3:.0f} ms / "
         f"{durations[-1] * 1e3:.0f} ms"),
        ("through the real twin check process: examples / wrong / time",
         f"{len(for_process)} ({sum(c == 2 for _, c in for_process)} rejected) / {proc_bad} / {proc_wall:.0f} s"),
    ]
    w = max(len(k) for k, _ in rows)
    for k, v in rows:
        print(f"{k:<{w}}  {v}")
    print("\nmost frequent first errors:")
    for kind, count in kinds.most_common(12):
        print(f"  {count:>6,}  {kind}")
    if causes:
        print("\ntracebacks by exception, innermost frame of the project and message:")
        for cause, count in causes.most_common():
            print(f"  {count:>6,}  {cause}")
    if failures:
        args.keep.mkdir(parents=True, exist_ok=True)
        for i, (_, data) in enumerate(failures[:5]):
            (args.keep / f"failure-{i}.toml").write_bytes(data)
        print(f"\n{min(5, len(failures))} failing examples kept in {args.keep}/failure-N.toml; the first:")
        print(failures[0][0])
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
