"""Attacks on the dashboard over real HTTP on 127.0.0.1, and the limits that stop them (issue 18).

* Request bodies: a 1 GB POST to ``/login`` (waitress, the ``twin dashboard`` process) and a
  viewer's 300 MB callback body (Flask's server) are refused with 413 before they are read; the
  server's resident memory grows by less than ``RSS_BOUND`` (the attack grew it by 4 GB).
* Sign-in throttle: after 5 failed guesses of one user (20 from one address) every attempt, the
  right password included, is refused with 429 "too many failed sign-ins, try again in N s".
* Sessions live on the server: a cookie copied before logout (or before a password change) no
  longer signs anyone in; the cookie can be made ``Secure``; weak secrets stop the command (exit 2).

Servers are real: ``twin dashboard`` as a subprocess, or the app on werkzeug's threaded server in
this process (``tests/dashboard/serve.py``), over a history made by ``tests/dashboard/history.py``.
"""

from __future__ import annotations

import http.client
import os
import re
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Iterator
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path

import psutil
import pytest
from werkzeug.security import generate_password_hash

from dashboard.app import PROTECTED_OUTPUTS, create_app
from dashboard.auth import (
    LoginThrottle,
    SessionStore,
    ThrottlePolicy,
    User,
    UserRole,
    secret_problems,
    settings_for,
)
from dashboard.services import Services
from tests.conftest import free_port
from tests.dashboard.serve import serving
from tests.reliability.dashboard_rig import ROOT, SECRET, USERS, Client, make_plant, open_queries

pytestmark = [pytest.mark.server]

MIB = 1024 * 1024
# The refused bodies are never read: only request headers (< 1 kB) reach the server, so what remains
# is allocator noise. 32 MiB is 1/32 of the 1 GB sent and 1/125 of the 4 GB the unprotected server grew.
RSS_BOUND = 32 * MIB


@pytest.fixture(scope="module")
def plant(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_plant(tmp_path_factory.mktemp("plant"))


@pytest.fixture
def dashboard(plant: Path, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    """The dashboard app with login (users vera/erin) on werkzeug's threaded server; its base URL.

    ``@pytest.mark.parametrize("auth_options", [{...}])`` passes options to ``settings_for``.
    """
    options = getattr(request, "param", {})
    queries, store = open_queries(plant)
    auth = settings_for("0.0.0.0", env={"TWIN_SECRET_KEY": SECRET}, users_file=plant / "users.toml",
                        protected=PROTECTED_OUTPUTS, **options)
    app = create_app(Services(queries=queries, cache_dir=tmp_path / "jobs"), auth=auth)
    try:
        with serving(app, free_port()) as url:
            yield url
    finally:
        store.close()


def _declared_body(url: str, path: str, length: int, cookie: str = "") -> tuple[int, str]:
    """Send a request announcing a ``length``-byte body, then read the answer before sending any of it.

    The body is what the attack sent; a server that refuses it from its Content-Length answers at
    once (a server reading it first would wait here until the client's 30 s timeout).
    """
    parsed = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parsed.hostname or "", parsed.port, timeout=30)
    try:
        conn.putrequest("POST", path)
        conn.putheader("Content-Type", "application/x-www-form-urlencoded")
        conn.putheader("Content-Length", str(length))
        if cookie:
            conn.putheader("Cookie", cookie)
        conn.endheaders()
        r = conn.getresponse()
        return r.status, r.read().decode("utf-8", "replace")
    finally:
        conn.close()


# --- 1. request bodies -------------------------------------------------------------------------------------


def _wait_for(url: str, proc: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 60
    while True:
        try:
            status, _, _ = Client(url).request("GET", "/login")
            if status == 200:
                return
        except OSError:
            pass
        assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
        assert time.monotonic() < deadline, "the dashboard did not answer within 60 s"
        time.sleep(0.2)


def test_a_1_gb_login_post_to_twin_dashboard_is_refused_unread(plant: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TWIN_SECRET_KEY": SECRET}
    proc = subprocess.Popen([sys.executable, "-m", "app", "dashboard", "examples/fleet.toml", "--port",
                             str(port), "--users", "users.toml", "--threads", "2", "--max-body-mb", "16"],
                            cwd=plant, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        _wait_for(url, proc)
        server = psutil.Process(proc.pid)
        before = server.memory_info().rss
        status, text = _declared_body(url, "/login", 1024 * MIB)
        # waitress answers from the header: its limit is --max-body-mb 16 = 16 * 2**20 = 16,777,216 bytes
        assert (status, "exceeds max_body of 16777216" in text) == (413, True), text
        # a body the limit allows still signs in (nothing stays broken)
        assert Client(url).login("erin", "erin-pw")[0] == 302
        grown = server.memory_info().rss - before
        print(f"twin dashboard RSS {before / MIB:.1f} MiB, grew by {grown / MIB:.2f} MiB after a 1 GB POST")
        assert grown < RSS_BOUND, f"RSS grew by {grown / MIB:.1f} MiB"
    finally:
        proc.terminate()
        try:
            proc.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate(timeout=10)


def test_a_viewers_300_mb_callback_body_is_refused_unread(dashboard: str) -> None:
    viewer = Client(dashboard)
    assert viewer.login("vera", "vera-pw")[0] == 302
    me = psutil.Process()
    before = me.memory_info().rss
    status, text = _declared_body(dashboard, "/_dash-update-component", 300 * MIB, viewer.cookie)
    # the default limit, dashboard.auth.DEFAULT_MAX_BODY_BYTES = 16 MiB = 16,777,216 bytes
    assert status == 413
    assert text == ("request body too large: at most 16,777,216 bytes (got 314,572,800 bytes); "
                    "the limit is set by twin dashboard --max-body-mb")
    grown = me.memory_info().rss - before
    print(f"test process RSS {before / MIB:.1f} MiB, grew by {grown / MIB:.2f} MiB after a 300 MB callback POST")
    assert grown < RSS_BOUND, f"RSS grew by {grown / MIB:.1f} MiB"
    # the same announced size to /login, before any session: refused the same way
    assert _declared_body(dashboard, "/login", 300 * MIB)[0] == 413


@pytest.mark.parametrize("dashboard", [{"max_body_bytes": 1000}], indirect=True)
def test_the_body_limit_is_a_setting_and_a_body_within_it_passes(dashboard: str) -> None:
    c = Client(dashboard)
    assert c.login("erin", "erin-pw")[0] == 302  # ~45 bytes of form
    body = b"username=erin&password=" + b"x" * 1000
    status, _, text = c.request("POST", "/login", body, {"Content-Type": "application/x-www-form-urlencoded"})
    assert status == 413 and "at most 1,000 bytes (got 1,023 bytes)" in text


# --- 2. sign-in throttle -----------------------------------------------------------------------------------


def test_guessing_a_password_locks_the_user_out_even_for_the_right_password(dashboard: str) -> None:
    c = Client(dashboard)
    for k in range(4):  # ThrottlePolicy.user_failures = 5: the first 4 failures are only counted
        status, _, page = c.login("erin", f"guess-{k}")
        assert status == 401 and "Unknown user or wrong password" in page and "try again" not in page
    status, _, page = c.login("erin", "guess-4")  # the 5th: a lock of first_lock_s = 30 s starts
    assert status == 401 and "Too many failed sign-ins, try again in 30 s" in page
    status, headers, page = c.login("erin", "erin-pw")  # the right password, during the lock
    assert status == 429 and "Too many failed sign-ins, try again in" in page
    wait = int(re.search(r"try again in (\d+) s", page).group(1))  # type: ignore[union-attr]
    assert 0 < wait <= 30 and headers["retry-after"] == str(wait)
    assert c.request("GET", "/_dash-layout")[0] == 401  # not signed in
    # another user from the same address is not locked by erin's lock (5 < address_failures = 20)
    assert Client(dashboard).login("vera", "vera-pw")[0] == 302


def test_guessing_many_user_names_from_one_address_locks_the_address(dashboard: str) -> None:
    c = Client(dashboard)
    for k in range(20):  # ThrottlePolicy.address_failures = 20, each name guessed once
        assert c.login(f"user{k}", "pw")[0] == 401
    status, _, page = c.login("vera", "vera-pw")  # a valid account, from the locked address
    assert status == 429 and "Too many failed sign-ins, try again in" in page


def test_lockouts_double_with_each_further_failure_and_end() -> None:
    now = [1000.0]
    t = LoginThrottle(ThrottlePolicy(user_failures=3, address_failures=100, window_s=600.0, first_lock_s=10.0,
                                     max_lock_s=35.0), clock=lambda: now[0])
    assert [t.failed("erin", "a") for _ in range(3)] == [0.0, 0.0, 10.0]  # the 3rd failure locks for 10 s
    assert t.wait_s("erin", "b") == 10.0  # per user, from any address
    now[0] += 10.0
    assert t.wait_s("erin", "a") == 0.0
    assert t.failed("erin", "a") == 20.0  # 4 failures in the window: 10 * 2
    now[0] += 20.0
    assert t.failed("erin", "a") == 35.0  # 10 * 4 = 40, capped at max_lock_s = 35
    now[0] += 600.0  # the window passes: the old failures no longer count
    assert t.failed("erin", "a") == 0.0
    t.succeeded("erin")
    assert t.wait_s("erin", "a") == 0.0


# --- 3. sessions, cookie, secret ---------------------------------------------------------------------------


def test_a_cookie_copied_before_logout_no_longer_works(dashboard: str) -> None:
    c = Client(dashboard)
    assert c.login("erin", "erin-pw")[0] == 302
    copied = Client(dashboard)
    copied.cookie = c.cookie
    assert copied.request("GET", "/_dash-layout")[0] == 200
    c.request("GET", "/logout")
    assert copied.request("GET", "/_dash-layout")[0] == 401  # the session ended on the server


def test_a_password_change_ends_the_users_sessions(plant: Path, tmp_path: Path) -> None:
    users = tmp_path / "users.toml"
    vera_hash = generate_password_hash("vera-pw")
    users.write_text(USERS.format(vera=vera_hash, erin=generate_password_hash("erin-pw")), encoding="utf-8")
    queries, store = open_queries(plant)
    auth = settings_for("0.0.0.0", env={"TWIN_SECRET_KEY": SECRET}, users_file=users, protected=PROTECTED_OUTPUTS)
    app = create_app(Services(queries=queries, cache_dir=tmp_path / "jobs"), auth=auth)
    try:
        with serving(app, free_port()) as url:
            erin, vera = Client(url), Client(url)
            assert erin.login("erin", "erin-pw")[0] == 302 and vera.login("vera", "vera-pw")[0] == 302
            users.write_text(USERS.format(vera=vera_hash, erin=generate_password_hash("erin-new-pw")),
                             encoding="utf-8")
            deadline = time.monotonic() + 15  # the users file is re-read at most once a second
            while erin.request("GET", "/_dash-layout")[0] == 200:
                assert time.monotonic() < deadline, "erin's session survived her password change"
                time.sleep(0.2)
            assert erin.request("GET", "/_dash-layout")[0] == 401
            assert vera.request("GET", "/_dash-layout")[0] == 200  # vera's password did not change
            assert erin.login("erin", "erin-pw")[0] == 401 and erin.login("erin", "erin-new-pw")[0] == 302
    finally:
        store.close()


def _session_cookie(url: str) -> str:
    status, headers, _ = Client(url).login("erin", "erin-pw")
    assert status == 302
    return headers["set-cookie"]


def test_the_session_cookie_is_httponly_lax_not_secure_and_lasts_12_h_by_default(dashboard: str) -> None:
    cookie = _session_cookie(dashboard)
    attrs = {a.strip().split("=", 1)[0].lower(): a.strip() for a in cookie.split(";")[1:]}
    assert "httponly" in attrs and attrs["samesite"] == "SameSite=Lax" and "secure" not in attrs
    expires = parsedate_to_datetime(attrs["expires"].split("=", 1)[1])
    # DEFAULT_SESSION_LIFETIME_S = 12 h from sign-in (the cookie's Expires is rounded to the second)
    assert abs((expires - datetime.now(UTC)).total_seconds() - 12 * 3600) < 120


@pytest.mark.parametrize("dashboard", [{"secure_cookie": True, "session_lifetime_s": 3600.0}], indirect=True)
def test_the_session_cookie_can_be_secure_with_a_shorter_lifetime(dashboard: str) -> None:
    cookie = _session_cookie(dashboard)
    assert "; Secure" in cookie
    expires = parsedate_to_datetime(re.search(r"Expires=([^;]+)", cookie).group(1))  # type: ignore[union-attr]
    assert abs((expires - datetime.now(UTC)).total_seconds() - 3600) < 120


def test_sessions_end_after_their_lifetime_and_when_idle() -> None:
    now = [0.0]
    store = SessionStore(lifetime_s=100.0, idle_s=30.0, clock=lambda: now[0])
    erin = User(name="erin", role=UserRole.ENGINEER, password_hash="h1")
    users = {"erin": erin}
    sid = store.begin(erin)
    for _ in range(3):  # used every 25 s: never idle for 30 s
        now[0] += 25.0
        assert store.user_of(sid, users) == erin
    now[0] += 25.0  # 100 s after sign-in: the lifetime is over although the session was in use
    assert store.user_of(sid, users) is None and len(store) == 0
    idle = store.begin(erin)
    now[0] += 30.0
    assert store.user_of(idle, users) is None  # 30 s without a request


def test_weak_secrets_stop_the_dashboard_command(plant: Path) -> None:
    # one repeated letter (the attack's 16 'a'), a long one of little variety, one too short, and the
    # placeholder of docker/.env.example (33 characters, 16 different: long and varied enough otherwise)
    cases = {"a" * 16: "too short", "ab" * 20: "too little variety", "Xy3#" * 4: "too short",
             "change-me-long-random-session-key": "is the example placeholder"}
    for secret, why in cases.items():
        env = {**os.environ, "PYTHONPATH": str(ROOT), "TWIN_SECRET_KEY": secret}
        out = subprocess.run([sys.executable, "-m", "app", "dashboard", "examples/fleet.toml",
                              "--host", "0.0.0.0", "--port", str(free_port()), "--users", "users.toml"],
                             cwd=plant, env=env, capture_output=True, text=True, timeout=120)
        assert out.returncode == 2, out.stderr
        assert f"TWIN_SECRET_KEY: {why}" in out.stderr and "at least 32 characters" in out.stderr
        assert secret not in out.stdout + out.stderr  # the secret itself is never echoed


def test_a_random_secret_passes_the_strength_check() -> None:
    import secrets

    assert secret_problems(secrets.token_hex(32)) == []  # 64 hex digits: 16 possible, ~16 different
    assert secret_problems(SECRET) == []


def test_out_of_range_limits_stop_the_dashboard_command(plant: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for flag, value, why in (("--max-body-mb", "0", "must be 0.001..1024"), ("--max-body-mb", "nan", "must be"),
                             ("--max-runs", "0", "must be 1..64"), ("--session-hours", "0", "must be 0.01..744")):
        out = subprocess.run([sys.executable, "-m", "app", "dashboard", "examples/fleet.toml",
                              "--port", str(free_port()), flag, value], cwd=plant, env=env, capture_output=True,
                             text=True, timeout=120)
        assert out.returncode == 2 and f"{flag}: {why}" in out.stderr, (flag, value, out.stderr)
