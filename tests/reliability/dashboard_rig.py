"""Shared by the dashboard attack tests: a plant copy with history and users, and a small HTTP client."""

from __future__ import annotations

import http.client
import shutil
import urllib.parse
from datetime import UTC, datetime
from pathlib import Path

from werkzeug.security import generate_password_hash

from connectors.config import load
from connectors.store import SqliteHistorian
from dashboard.queries import QueryService
from tests.dashboard import history
from twin.historian import WriterRecorder

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 1, 7, 12, 0, tzinfo=UTC)  # a Wednesday in shift (as tests/dashboard)
SECRET = "hardening-test-secret-0123456789abcdef"  # 38 characters, 27 different
USERS = """
[users.vera]
role = "viewer"
password_hash = "{vera}"
[users.erin]
role = "engineer"
password_hash = "{erin}"
"""


def users_text(vera: str = "vera-pw", erin: str = "erin-pw") -> str:
    return USERS.format(vera=generate_password_hash(vera), erin=generate_password_hash(erin))


def make_plant(root: Path) -> Path:
    """A copy of examples/ in ``root`` with 4 h of deterministic history in its configured SQLite file,
    and a users file (vera viewer, erin engineer); returns ``root``."""
    shutil.copytree(ROOT / "examples", root / "examples")
    config = load(root / "examples" / "fleet.toml")
    store = SqliteHistorian(root / config.historian.path, config.fleet)
    try:
        history.fill(store, config.fleet, NOW, hours=4.0, step_s=300.0)
    finally:
        store.close()
    (root / "users.toml").write_text(users_text(), encoding="utf-8")
    return root


def open_queries(plant: Path) -> tuple[QueryService, SqliteHistorian]:
    config = load(plant / "examples" / "fleet.toml")
    store = SqliteHistorian(plant / config.historian.path, config.fleet)
    return QueryService(fleet=config.fleet, historian=store, clock=lambda: NOW,
                        recorder=WriterRecorder(store)), store


class Client:
    """A tiny HTTP client keeping one cookie jar (the session cookie), over http.client."""

    def __init__(self, url: str) -> None:
        parsed = urllib.parse.urlsplit(url)
        self.host, self.port = parsed.hostname or "127.0.0.1", parsed.port or 80
        self.cookie = ""

    def request(self, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None
                ) -> tuple[int, dict[str, str], str]:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=30)
        try:
            hdrs = dict(headers or {})
            if self.cookie:
                hdrs["Cookie"] = self.cookie
            conn.request(method, path, body=body, headers=hdrs)
            r = conn.getresponse()
            text = r.read().decode("utf-8", "replace")
            got = {k.lower(): v for k, v in r.getheaders()}
            if "set-cookie" in got:
                self.cookie = got["set-cookie"].split(";", 1)[0]
            return r.status, got, text
        finally:
            conn.close()

    def login(self, user: str, password: str) -> tuple[int, dict[str, str], str]:
        body = urllib.parse.urlencode({"username": user, "password": password, "next": "/"}).encode()
        return self.request("POST", "/login", body, {"Content-Type": "application/x-www-form-urlencoded"})


