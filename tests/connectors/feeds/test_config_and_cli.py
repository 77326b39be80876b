"""``[feeds]`` in the configuration (valid and invalid files), and ``twin collect`` receiving both feeds."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import tomllib
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

import pytest
import tomli_w

from connectors.config import load, load_text
from connectors.feeds.recorder import CollectorRecorder
from connectors.store import SqliteHistorian
from tests.conftest import EXAMPLES, ROOT, free_port
from twin.errors import ConfigError
from twin.frozen import FrozenDict
from twin.spec import SiteId
from twin.state import Event, EventKind

_RAW = tomllib.loads((EXAMPLES / "fleet.toml").read_text(encoding="utf-8"))
_RAW.pop("feeds", None)
BASE = tomli_w.dumps(_RAW)  # the example fleet without its [feeds]


def with_feeds(feeds: str) -> str:
    return BASE + "\n" + feeds


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as err:
        load_text(text, source=Path("/cfg/plant.toml"))
    return [str(p) for p in err.value.problems]


def test_the_example_has_a_drop_folder() -> None:
    feeds = load(EXAMPLES / "fleet.toml").feeds
    assert feeds is not None and feeds.drop_dir == (EXAMPLES.parent / "var" / "feeds" / "in").resolve()


def test_paths_resolve_against_the_file_and_defaults() -> None:
    cfg = load_text(with_feeds('[feeds]\ndrop_dir = "feeds/in"\n[feeds.http]\ntoken_env = "TWIN_FEEDS_TOKEN"\n'),
                    source=Path("/cfg/plant.toml"))
    feeds = cfg.feeds
    assert feeds is not None and feeds.http is not None
    assert (feeds.drop_dir, feeds.poll_s, feeds.ledger) == (Path("/cfg/feeds/in"), 5.0, None)
    assert feeds.ledger_path(cfg.historian.path) == cfg.historian.path.parent / "feeds.db"
    assert (feeds.http.host, feeds.http.port, feeds.http.max_body_bytes) == ("127.0.0.1", 8081, 1024 * 1024)
    assert load_text(BASE).feeds is None


@pytest.mark.parametrize(("feeds", "expected"), [
    ("[feeds]\npoll_s = 0\n", ["feeds.poll_s: Input should be greater than 0 (got 0)"]),
    ('[feeds]\ndrop_dir = "in"\npoll_s = "5"\n', ["feeds.poll_s: Input should be a valid number (got '5')"]),
    ('[feeds]\ndrop_dir = "in"\npoll = 5\n', ["feeds.poll: unknown key (got 5)"]),
    ("[feeds]\n", ["feeds: give drop_dir, [feeds.http] or both (nothing to receive)"]),
    ('[feeds.http]\ntoken = "abc"\n', ["feeds.http.token: the feed token is never read from the configuration file; "
                                       "name an environment variable with token_env or a file with token_file "
                                       "(got '{token}')"]),
    ('[feeds.http]\nlisten = "8081"\ntoken_env = "T"\n',
     ["feeds.http.listen: expected HOST:PORT with a port 1..65535, e.g. 127.0.0.1:8081 (got '8081')"]),
    ("[feeds.http]\n", ["feeds.http: needs token_env or token_file (where the bearer token is read from) (got '{}')"]),
    ('[feeds.http]\ntoken_env = "T"\nmax_body_kb = 0\n',
     ["feeds.http.max_body_kb: Input should be greater than or equal to 1 (got 0)"]),
])
def test_invalid_feeds_sections(feeds: str, expected: list[str]) -> None:
    assert problems(with_feeds(feeds)) == expected


def test_error_message_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "plant.toml"
    path.write_text(with_feeds("[feeds]\npoll_s = -1\n"), encoding="utf-8")
    with pytest.raises(ConfigError, match=r"plant\.toml: feeds\.poll_s: Input should be greater than 0 \(got -1\)"):
        load(path)


ACK = Event(ts=datetime(2026, 3, 2, 9, 0, tzinfo=UTC), site=SiteId("pod-berlin"), asset="P1",
            kind=EventKind.ALARM_ACKNOWLEDGED, message="acknowledged by ana",
            data=FrozenDict({"rule": "hot", "key": "hot:P1", "user": "ana", "comment": "", "priority": 3}))


@pytest.mark.server
@pytest.mark.slow
def test_twin_collect_takes_files_and_requests(tmp_path: Path) -> None:
    raw = tomllib.loads(BASE)  # a copy
    raw.pop("sources", None)  # no PLCs: only the feeds
    raw["historian"] = {"path": "history.db", "checkpoint_interval_s": 60}
    port = free_port()
    raw["feeds"] = {"drop_dir": "in", "poll_s": 0.2, "http": {"listen": f"127.0.0.1:{port}", "token_file": "tok"}}
    (tmp_path / "plant.toml").write_text(tomli_w.dumps(raw), encoding="utf-8")
    (tmp_path / "tok").write_text("abc123\n", encoding="utf-8")
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "orders-1.csv").write_text(
        "id,version,site,product,qty,created,due\n"
        "o1,1,pod-berlin,custom-bracket,5,2026-03-02T08:00:00Z,2026-03-04T08:00:00Z\n", encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "app", "collect", str(tmp_path / "plant.toml"),
                             "--duration", "20"], cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    try:
        body = json.dumps({"id": "o2", "version": 1, "site": "pod-berlin", "product": "machined-housing",
                           "qty": 2, "created": "2026-03-02T08:00:00Z", "due": "2026-03-05T08:00:00Z"}).encode()
        req = urllib.request.Request(f"http://127.0.0.1:{port}/api/v1/orders", data=body, method="POST",
                                     headers={"Authorization": "Bearer abc123"})
        answer = None
        deadline = time.monotonic() + 15
        while answer is None and time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(req, timeout=2) as resp:
                    answer = json.loads(resp.read())
            except OSError:
                time.sleep(0.1)
        assert answer == {"accepted": 1, "duplicates": 0, "late": 0, "rejected": []}
        # the dashboard's acknowledgements: answered once twin collect committed them to the history
        CollectorRecorder(f"http://127.0.0.1:{port}", "abc123").record((ACK,))
        while (tmp_path / "in" / "orders-1.csv").exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(1.0)  # a flush (every 0.5 s) writes the checkpoint of the site with events
    finally:
        proc.send_signal(2)
        out, _ = proc.communicate(timeout=15)
    assert proc.returncode == 0, out.decode()
    assert b"abc123" not in out  # the token is never printed
    store = SqliteHistorian(tmp_path / "history.db", load(tmp_path / "plant.toml").fleet)
    state = store.state_at(SiteId("pod-berlin"), datetime.now(UTC))
    acks = store.events("pod-berlin", ACK.ts, ACK.ts)
    store.close()
    assert state is not None
    assert sorted(o.id for o in state.orders) == ["o1", "o2"]
    assert acks == [ACK]
    assert (tmp_path / "feeds.db").exists()  # the ledger beside the historian file


def test_the_drop_limits_and_quarantine_from_the_file(tmp_path: Path) -> None:
    from connectors.feeds.drop import FileDrop
    from connectors.feeds.intake import Intake
    from connectors.feeds.ledger import Ledger

    cfg = load_text(with_feeds('[feeds]\ndrop_dir = "feeds/in"\nquarantine_dir = "feeds/bad"\nmax_file_mb = 2\n'
                               "max_line_kb = 8\n"), source=tmp_path / "plant.toml")
    feeds = cfg.feeds
    assert feeds is not None
    ledger = Ledger(tmp_path / "feeds.db")
    try:
        drop = FileDrop.from_config(feeds, Intake(cfg.fleet, ledger), lambda records: None)
        # 2 MiB = 2,097,152 bytes; 8 KiB = 8,192 bytes
        assert (drop.quarantine, drop.limits.max_file_bytes, drop.limits.max_line_bytes) == (
            tmp_path / "feeds" / "bad", 2_097_152, 8192)
    finally:
        ledger.close()
    default = load_text(with_feeds('[feeds]\ndrop_dir = "in"\n'), source=tmp_path / "plant.toml").feeds
    assert default is not None and (default.quarantine_dir, default.max_file_bytes) == (None, 64 * 1024 * 1024)
    assert problems(with_feeds('[feeds]\ndrop_dir = "in"\nmax_file_mb = 0\n')) == [
        "feeds.max_file_mb: Input should be greater than or equal to 1 (got 0)"]
    assert problems(with_feeds('[feeds]\ndrop_dir = "in"\nquarantine_dir = "in"\n')) == [
        "feeds.quarantine_dir: the quarantine cannot be the watched drop_dir itself (got 'in')"]


@pytest.mark.server
@pytest.mark.slow
def test_twin_collect_survives_the_attack_files(tmp_path: Path) -> None:
    """Issue 18's attack on the real process: each of these files stopped ``twin collect`` (3/3 restarts)."""
    raw = tomllib.loads(BASE)
    raw.pop("sources", None)
    raw["historian"] = {"path": "history.db", "checkpoint_interval_s": 60}
    raw["feeds"] = {"drop_dir": "in", "poll_s": 0.2, "quarantine_dir": "bad"}  # twin collect honours it
    (tmp_path / "plant.toml").write_text(tomli_w.dumps(raw), encoding="utf-8")
    folder = tmp_path / "in"
    folder.mkdir()
    good = '{{"id":"{id}","version":1,"site":"pod-berlin","product":"custom-bracket","qty":2,' \
           '"created":"2026-03-02T08:00:00Z","due":"2026-03-04T08:00:00Z"}}'
    (folder / "orders-x.csv").write_text(  # the attack's repro: a version of 23 digits
        "id,version,site,product,qty,created,due\n"
        "O-1,99999999999999999999999,pod-berlin,custom-bracket,2,2026-11-23T08:00:00Z,2026-11-30T14:00:00Z\n"
        "o1,1,pod-berlin,custom-bracket,5,2026-03-02T08:00:00Z,2026-03-04T08:00:00Z\n", encoding="utf-8")
    (folder / "orders-deep.jsonl").write_text('{"id":' + "[" * 1000 + "]" * 1000 + "}\n" + good.format(id="o2")
                                              + "\n", encoding="utf-8")
    (folder / "orders-digits.jsonl").write_text(good.format(id="o3").replace('"qty":2', '"qty":' + "1" * 4400)
                                                + "\n" + good.format(id="o4") + "\n", encoding="utf-8")
    secret = tmp_path / "secret.txt"
    secret.write_text("top-secret-line\n", encoding="utf-8")
    os.symlink(secret, folder / "orders-link.csv")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "app", "collect", str(tmp_path / "plant.toml"),
                             "--duration", "30"], cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 20
        while any(p.suffix in (".csv", ".jsonl") for p in folder.iterdir()) and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(1.0)  # a flush (every 0.5 s) writes the checkpoint of the site with events
        assert proc.poll() is None, "twin collect stopped"
    finally:
        proc.send_signal(2)
        out, _ = proc.communicate(timeout=15)
    assert proc.returncode == 0, out.decode()
    assert sorted(p.name.split(".")[0] for p in (folder / "processed").iterdir()) == [
        "orders-deep", "orders-digits", "orders-x"]
    assert [p.name.split(".")[0] for p in (tmp_path / "bad").iterdir()] == ["orders-link"] * 2  # + why
    rejects = (tmp_path / "in-rejects.jsonl").read_text(encoding="utf-8")
    assert "top-secret-line" not in rejects and rejects.count("\n") == 4  # 3 records + 1 quarantined file
    store = SqliteHistorian(tmp_path / "history.db", load(tmp_path / "plant.toml").fleet)
    state = store.state_at(SiteId("pod-berlin"), datetime.now(UTC))
    store.close()
    assert state is not None
    assert sorted(o.id for o in state.orders) == ["o1", "o2", "o4"]


def test_a_token_file_that_is_not_text_is_a_named_error(tmp_path: Path) -> None:
    from connectors.config.feeds import FeedsHttpConfig, read_token

    token = tmp_path / "tok"
    http = FeedsHttpConfig(host="127.0.0.1", port=8081, max_body_bytes=1024, token_file=token)
    token.write_bytes(b"\xffsecret\xfe\n")  # not UTF-8 (read_text raised UnicodeDecodeError: a traceback)
    with pytest.raises(ConfigError) as err:
        read_token(http, "plant.toml")
    assert str(err.value) == f"plant.toml: feeds.http.token_file: not UTF-8 text (got '{token}')"
    assert "secret" not in str(err.value).replace(str(token), "")
    token.write_bytes(b"a" * (64 * 1024 + 1))
    with pytest.raises(ConfigError, match="over 64 KiB: not a token file"):
        read_token(http, "plant.toml")
