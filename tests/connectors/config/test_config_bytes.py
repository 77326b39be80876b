"""``twin check`` on corrupted bytes: never a traceback, always exit 0 or 2 with errors naming the file.

Regression tests of the attack run of issue 18: invalid UTF-8 (``UnicodeDecodeError`` from
``read_text``) and arrays nested 500 deep (``RecursionError`` from ``tomllib``) showed tracebacks and
exited 1. The property test corrupts the example configuration's BYTES (not its TOML values):
random bytes replaced, inserted or deleted, the file cut short, deep nesting spliced in.
"""

from __future__ import annotations

import atexit
import contextlib
import io
import shutil
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app import main
from tests.conftest import EXAMPLES

ORIGINAL = (EXAMPLES / "fleet.toml").read_bytes()
WORKDIR = Path(tempfile.mkdtemp(prefix="twin-config-bytes-"))
atexit.register(shutil.rmtree, WORKDIR, True)  # a folder per session, removed at exit


def check(data: bytes, name: str = "plant.toml") -> tuple[int, str]:
    """Run ``twin check`` in this process on a file holding ``data``: the exit code and stderr."""
    path = WORKDIR / name
    path.write_bytes(data)
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["check", str(path)])  # any other exception than ConfigError fails the test here
    return code, err.getvalue()


def assert_named_error(code: int, err: str, name: str = "plant.toml") -> None:
    assert code == 2, err
    lines = err.strip().splitlines()
    assert lines, "exit 2 must say why"
    assert all(str(WORKDIR / name) in line for line in lines if not line.startswith("  ")), err
    assert "Traceback" not in err


def test_invalid_utf8_is_a_named_error_exit_2() -> None:
    data = ORIGINAL.replace(b'name = "', b'name = "\xff\xfe', 1)
    code, err = check(data)
    assert_named_error(code, err)
    # the first replaced quote is on the file's first `name = "` line; 0xff is the byte after it
    offset = ORIGINAL.index(b'name = "') + len(b'name = "')
    line = ORIGINAL[:offset].count(b"\n") + 1
    assert f"not UTF-8 text: byte {offset} (line {line}) is 0xff" in err


def test_arrays_nested_500_deep_are_a_named_error_exit_2() -> None:
    code, err = check(b"x = " + b"[" * 500 + b"]" * 500 + b"\n" + ORIGINAL)
    assert_named_error(code, err)
    assert "nested too deep" in err


def test_a_directory_and_a_missing_file_are_named_errors(tmp_path: Path) -> None:
    for target in (tmp_path, tmp_path / "missing.toml"):
        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            code = main(["check", str(target)])
        assert code == 2 and err.getvalue().startswith(f"{target}: "), err.getvalue()


_SPLICES = st.sampled_from([b"\xff", b"\xc3", b"\x00", b"\xed\xa0\x80", b"[" * 600, b"{a=" * 400, b'"""',
                            b"\r", b"\n[[", b"= =", b"\\u00", b"1e99999", b"9" * 5000])


@st.composite
def corrupted(draw: st.DrawFn) -> bytes:
    data = bytearray(ORIGINAL)
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        at = draw(st.integers(min_value=0, max_value=len(data)))
        op = draw(st.sampled_from(["replace", "insert", "delete", "splice", "cut"]))
        if op == "replace" and at < len(data):
            data[at] = draw(st.integers(min_value=0, max_value=255))
        elif op == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=8))
        elif op == "delete":
            del data[at:at + draw(st.integers(min_value=1, max_value=40))]
        elif op == "splice":
            data[at:at] = draw(_SPLICES)
        else:
            del data[at:]
    return bytes(data)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(corrupted())
def test_corrupted_bytes_never_show_a_traceback(data: bytes) -> None:
    code, err = check(data)
    if code == 0:
        return  # the corruption left a valid configuration (e.g. a changed comment)
    assert_named_error(code, err)


def test_an_integer_of_5000_digits_is_a_named_error() -> None:
    # found by the corrupted-bytes property test: tomllib raises ValueError (Python's 4,300-digit limit
    # for int()), not TOMLDecodeError, and it escaped as a traceback
    code, err = check(ORIGINAL.replace(b"stale_after_polls = 3", b"stale_after_polls = " + b"9" * 5000, 1))
    assert_named_error(code, err)
    assert "a number too long" in err
