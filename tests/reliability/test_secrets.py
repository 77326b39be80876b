"""Secrets: the InfluxDB token (from the environment or a file) never shows in logs, reprs, errors or output.

Every path that could leak it is driven against a dead InfluxDB (nothing listens on the port), with
every logger captured at DEBUG (urllib3 and influxdb-client included): writes, store-and-forward,
queries, the configuration loader, and the ``twin collect`` process at ``-vv``.
"""

from __future__ import annotations

import http.server
import logging
import os
import subprocess
import sys
import threading
import traceback
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest

from app.historians import open_historian
from connectors.config import load_text
from connectors.forward import StoreAndForward
from connectors.influx.historian import InfluxHistorian, read_token
from tests.conftest import free_port
from tests.connectors.modbus.conftest import fleet_text
from twin.errors import ConfigError, HistorianError
from twin.historian import SeriesKey
from twin.readings import Reading
from twin.spec import FleetSpec

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "tok-5Ecr3t-a1b2c3d4e5f6-DO-NOT-LEAK"
T0 = datetime(2026, 1, 5, tzinfo=UTC)
FLEET = FleetSpec(id="f", name="F", sites=(), templates=())


def _everything(exc: BaseException) -> str:
    """An exception with its whole chain and traceback, as a user would see it."""
    return "".join(traceback.format_exception(exc))


@pytest.fixture
def debug_logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG)  # the root logger: every library's debug output too
    for name in ("urllib3", "influxdb_client", "connectors", "twin"):
        caplog.set_level(logging.DEBUG, logger=name)
    return caplog


def test_token_never_in_logs_reprs_or_errors_when_the_server_is_dead(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, debug_logs: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("TWIN_TEST_INFLUX_TOKEN", TOKEN)
    url = f"http://127.0.0.1:{free_port()}"
    cfg = SimpleNamespace(kind="influxdb", path=str(tmp_path / "edge.db"), url=url, org="org", bucket="plant",
                          token_env="TWIN_TEST_INFLUX_TOKEN", token_file=None, rollup_interval_s=60,
                          retention_raw_days=None, query="flux", write_api="v2")
    seen: list[str] = []
    writer = open_historian(cfg, FLEET, "write")
    assert isinstance(writer, StoreAndForward)
    seen += [repr(writer), str(writer), repr(writer.sink), repr(writer.store)]
    readings = [Reading(ts=T0 + timedelta(seconds=i), site="s1", asset="P1", signal="t", value=float(i))
                for i in range(5)]
    writer.write(readings)  # acknowledged locally; forwarding fails against the dead server and is logged
    assert writer.backlog() == 1
    sink = writer.sink
    assert isinstance(sink, InfluxHistorian)
    with pytest.raises(HistorianError) as info:
        sink.write(readings)
    seen.append(_everything(info.value))
    writer.close()

    reader = open_historian(cfg, FLEET, "read")
    seen.append(repr(reader))
    with pytest.raises(HistorianError) as info:
        reader.series([SeriesKey(site="s1", asset="P1", signal="t")], T0, T0 + timedelta(hours=1), 100)
    seen.append(_everything(info.value))
    reader.close()

    logged = debug_logs.text + "\n".join(str(r.args) for r in debug_logs.records)
    assert "forwarding paused" in logged and "Connection refused" in logged  # the failure was logged...
    assert TOKEN not in logged  # ...without the token
    for text in seen:
        assert TOKEN not in text
        assert "Authorization" not in text


class _Unauthorised(http.server.BaseHTTPRequestHandler):
    """An InfluxDB that refuses every token (401), as a real one does with a wrong or expired token."""

    def _refuse(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        body = b'{"code":"unauthorized","message":"unauthorized access"}'
        self.send_response(401)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_POST = do_GET = _refuse

    def log_message(self, format: str, *args: object) -> None:
        pass


def test_token_never_leaks_when_the_server_refuses_it(debug_logs: pytest.LogCaptureFixture) -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Unauthorised)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        h = InfluxHistorian(f"http://127.0.0.1:{server.server_address[1]}", "org", "plant", TOKEN, FLEET,
                            timeout_s=5)
        with pytest.raises(HistorianError, match="401") as info:
            h.write([Reading(ts=T0, site="s1", asset="P1", signal="t", value=1.0)])
        with pytest.raises(HistorianError, match="401") as info_q:
            h.series([SeriesKey(site="s1", asset="P1", signal="t")], T0, T0 + timedelta(hours=1), 10)
        h.close()
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
    for text in (_everything(info.value), _everything(info_q.value), debug_logs.text, repr(h)):
        assert TOKEN not in text


def test_token_file_errors_do_not_quote_the_file(tmp_path: Path) -> None:
    f = tmp_path / "token"
    f.write_text(TOKEN + "\n")
    assert read_token(None, f) == TOKEN
    with pytest.raises(HistorianError) as info:
        read_token("TWIN_TEST_UNSET_VAR_8", tmp_path / "missing")
    assert TOKEN not in _everything(info.value)
    # an empty token file is refused without echoing anything from it
    (tmp_path / "empty").write_text("\n")
    with pytest.raises(HistorianError, match="no InfluxDB token"):
        read_token(None, tmp_path / "empty")


def test_a_token_written_into_the_configuration_is_refused_and_not_echoed() -> None:
    text = fleet_text() + ('\n[historian]\nkind = "influxdb"\nurl = "http://x"\norg = "o"\nbucket = "b"\n'
                           f'token = "{TOKEN}"\n')
    with pytest.raises(ConfigError, match=r"historian\.token: an InfluxDB token is never read from the configuration"
                       ) as info:
        load_text(text, source="f.toml")
    assert TOKEN not in _everything(info.value)


@pytest.mark.slow
def test_collect_process_at_debug_level_does_not_print_the_token(tmp_path: Path) -> None:
    dead = free_port()
    cfg = tmp_path / "fleet.toml"
    cfg.write_text(fleet_text(p15020=free_port(), p15021=free_port(), p15022=free_port()) + (
        f'\n[historian]\nkind = "influxdb"\npath = "{tmp_path / "edge.db"}"\nurl = "http://127.0.0.1:{dead}"\n'
        'org = "org"\nbucket = "plant"\ntoken_env = "TWIN_TEST_INFLUX_TOKEN"\n'))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TWIN_TEST_INFLUX_TOKEN": TOKEN}
    proc = subprocess.run([sys.executable, "-m", "app", "-vv", "collect", str(cfg), "--duration", "2"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert "DEBUG" in out and "forwarding paused" in out  # it did log at debug, and the failure
    assert TOKEN not in out


def test_binary_token_files_are_named_errors_not_tracebacks(tmp_path: Path) -> None:
    # issue 18: a token file that is not text raised UnicodeDecodeError out of both InfluxDB readers
    from connectors.influx.feed import feed_secret as read_secret
    from connectors.influx.historian import read_token
    from twin.errors import TwinError

    token = tmp_path / "token"
    token.write_bytes(b"\xffsecret\xfe")
    with pytest.raises(TwinError, match="is not UTF-8 text") as a:
        read_token(None, token)
    with pytest.raises(TwinError, match="is not UTF-8 text") as b:
        read_secret(None, token, "InfluxDB token")
    assert "secret" not in str(a.value).replace(str(token), "")
    assert "secret" not in str(b.value).replace(str(token), "")
