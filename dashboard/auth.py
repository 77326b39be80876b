"""Who may use the dashboard and do what: roles, login, server-side sessions and server-side checks.

* Roles: ``viewer`` (reads everything), ``operator`` (also acknowledges alarms, classifies stops and
  shelves alarms, one-shot or timed), ``engineer`` (also takes alarms out of service and back, and runs
  what-ifs), ``admin`` (everything). Checks run on the server in every callback that changes something or
  starts work (``require``), and a request guard refuses such callbacks' HTTP requests up front,
  so hiding a button is never the only protection.
* Login is required whenever the server listens on anything but loopback (or when a users file is
  given). Passwords are stored as werkzeug hashes (``werkzeug.security.generate_password_hash``)
  in a TOML file, re-read when it changes (a changed password or a removed user ends that user's
  sessions at once)::

      [users.alice]
      role = "engineer"
      password_hash = "scrypt:32768:8:1$..."

* Sessions live on the server (``SessionStore``): the cookie only carries a random session id,
  signed with the secret from ``TWIN_SECRET_KEY`` (at least 32 characters, 10 of them different).
  Logout ends the session on the server, so a copied cookie is worthless afterwards; a session
  ends after ``session_lifetime_s`` in any case and after ``idle_timeout_s`` without a request.
  ``secure_cookie`` marks the cookie ``Secure`` (behind an HTTPS proxy).
* Failed sign-ins are throttled per user name and per client address (``LoginThrottle``): after a
  few failures in a window every attempt, the right password included, is refused for a lockout
  that doubles with each further failure ("too many failed sign-ins, try again in N s").
* Request bodies are limited to ``max_body_bytes`` before anything reads them (413).
* On loopback without a users file the single local user is trusted as ``admin`` (a desktop HMI).
"""

from __future__ import annotations

import enum
import hashlib
import html
import ipaddress
import logging
import math
import os
import secrets
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlparse

import flask
from itsdangerous import BadSignature, URLSafeTimedSerializer
from pydantic import BaseModel, ConfigDict, Field, PlainValidator
from werkzeug.security import check_password_hash, generate_password_hash

from twin.errors import ConfigError, Problem, TwinError
from twin.tomltext import loads_toml
from twin.validation import Wording, collect, fail

__all__ = [
    "AuthSettings",
    "CurrentUser",
    "Forbidden",
    "LoginThrottle",
    "SessionStore",
    "ThrottlePolicy",
    "User",
    "UserRole",
    "current_user",
    "install",
    "is_loopback",
    "load_users",
    "require",
    "secret_problems",
    "settings_for",
    "sign",
    "too_large_message",
    "verify",
]

log = logging.getLogger(__name__)
CONFIG_KEY = "TWIN_AUTH"
STATE_KEY = "TWIN_AUTH_STATE"
SECRET_ENV = "TWIN_SECRET_KEY"
USERS_ENV = "TWIN_USERS_FILE"
MIN_SECRET_CHARS = 32
MIN_SECRET_DISTINCT = 10
# The largest legitimate request is the what-if result callback: the new result plus the session's
# last 10 runs as state, ~225 kB each on the example fleet (720 h, 20 bands): ~2.5 MB. 16 MB leaves
# room for sites with many more stocked items (each adds 2 bands, ~12 kB per run).
DEFAULT_MAX_BODY_BYTES = 16 * 1024 * 1024
DEFAULT_SESSION_LIFETIME_S = 12 * 3600.0
DEFAULT_IDLE_TIMEOUT_S = 2 * 3600.0
_DUMMY_HASH = generate_password_hash("not-a-password")  # equalises timing for unknown users


class UserRole(enum.IntEnum):
    """What a user may do; a higher role may do everything a lower one may."""

    VIEWER = 1
    OPERATOR = 2  # ISA-18.2: the operator acknowledges and shelves; out of service is the engineer's (MOC)
    ENGINEER = 3
    ADMIN = 4


class Forbidden(TwinError):
    """The current user's role does not allow this action."""


@dataclass(frozen=True, slots=True, kw_only=True)
class User:
    """A dashboard account."""

    name: str
    role: UserRole
    password_hash: str = field(repr=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class CurrentUser:
    """The user behind the current request."""

    name: str
    role: UserRole

    def may(self, role: UserRole) -> bool:
        return self.role >= role


LOCAL_ADMIN = CurrentUser(name="local", role=UserRole.ADMIN)


@dataclass(frozen=True, slots=True, kw_only=True)
class ThrottlePolicy:
    """When failed sign-ins lock a user name or a client address out.

    ``user_failures`` failures of one user name (``address_failures`` from one address) within
    ``window_s`` lock it for ``first_lock_s``; each further failure doubles the lock, up to ``max_lock_s``.
    """

    user_failures: int = 5
    address_failures: int = 20
    window_s: float = 900.0
    first_lock_s: float = 30.0
    max_lock_s: float = 900.0


@dataclass(frozen=True, slots=True, kw_only=True)
class AuthSettings:
    """How the dashboard authenticates. ``protected`` maps component ids of outputs to the role they need.

    ``users_file`` (when users came from one) is re-read when it changes. ``max_body_bytes`` limits
    every request body; ``session_lifetime_s`` / ``idle_timeout_s`` end sessions; ``secure_cookie``
    marks the session cookie ``Secure``.
    """

    login_required: bool
    secret_key: str = field(repr=False)
    users: Mapping[str, User] = field(default_factory=dict)
    protected: Mapping[str, UserRole] = field(default_factory=dict)
    users_file: Path | None = None
    secure_cookie: bool = False
    session_lifetime_s: float = DEFAULT_SESSION_LIFETIME_S
    idle_timeout_s: float = DEFAULT_IDLE_TIMEOUT_S
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    throttle: ThrottlePolicy = field(default_factory=ThrottlePolicy)

    @staticmethod
    def local() -> AuthSettings:
        """No login: for a server that listens on loopback only."""
        return AuthSettings(login_required=False, secret_key=secrets.token_hex(32))


def is_loopback(host: str) -> bool:
    """Whether ``host`` only accepts connections from this machine."""
    if host in ("localhost", "ip6-localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _role(value: object) -> UserRole:
    if not isinstance(value, str) or value not in {r.name.lower() for r in UserRole}:
        raise fail("must be viewer, operator, engineer or admin", value)
    return UserRole[value.upper()]


def _password_hash(value: object) -> str:
    if not isinstance(value, str) or ":" not in value:
        raise fail("must be a werkzeug password hash", "(hidden)")
    return value


class _UserEntry(BaseModel):
    """``[users.NAME]``: a role and a werkzeug password hash (never echoed in a message)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    role: Annotated[UserRole, PlainValidator(_role)] = Field(default=None, validate_default=True)
    password_hash: Annotated[str, PlainValidator(_password_hash)] = Field(default=None, validate_default=True)


_USERS = Wording(unknown="unknown key", types={"model_type": "must be a table"}, bare_keys=True)


def load_users(path: Path) -> dict[str, User]:
    """Users from a TOML file (see the module docstring); ``ConfigError`` listing every problem."""
    try:
        doc = loads_toml(path.read_text(encoding="utf-8"), str(path))
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(str(path), [Problem(path="", message=f"cannot read users: {exc}", has_got=False)]) from exc
    problems: list[Problem] = []
    users: dict[str, User] = {}
    raw = doc.get("users")
    if not isinstance(raw, dict) or not raw:
        raise ConfigError(str(path), [Problem(path="users", message="no users defined", got=raw)])
    for name, entry in raw.items():
        # keys sorted: unknown ones are listed in order; the path shows the name as written
        data = dict(sorted(entry.items())) if isinstance(entry, dict) else entry
        user = collect(_UserEntry, data, problems, prefix=f"users.{name}", wording=_USERS)
        if user is not None:
            users[name] = User(name=name, role=user.role, password_hash=user.password_hash)
    if problems:
        raise ConfigError(str(path), problems)
    return users


def secret_problems(secret: str) -> list[Problem]:
    """What is wrong with a session secret: too short, or too little variety (the secret is never echoed)."""
    hint = (f"set a random secret of at least {MIN_SECRET_CHARS} characters with at least {MIN_SECRET_DISTINCT} "
            "different ones, e.g. python -c 'import secrets; print(secrets.token_hex(32))'")
    if not secret:
        return [Problem(path=SECRET_ENV, message=f"login is required (not loopback or users given): {hint}",
                        got="(unset)")]
    if len(secret) < MIN_SECRET_CHARS:
        return [Problem(path=SECRET_ENV, message=f"too short: {hint}", got=f"{len(secret)} characters")]
    if "change-me" in secret.lower():
        return [Problem(path=SECRET_ENV, message=f"is the example placeholder of docker/.env.example: {hint}",
                        got="(placeholder)")]
    distinct = len(set(secret))
    if distinct < MIN_SECRET_DISTINCT:
        return [Problem(path=SECRET_ENV, message=f"too little variety: {hint}",
                        got=f"{distinct} different characters")]
    return []


def settings_for(
    host: str,
    *,
    env: Mapping[str, str] | None = None,
    users_file: Path | None = None,
    protected: Mapping[str, UserRole] | None = None,
    secure_cookie: bool = False,
    session_lifetime_s: float = DEFAULT_SESSION_LIFETIME_S,
    idle_timeout_s: float = DEFAULT_IDLE_TIMEOUT_S,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    throttle: ThrottlePolicy | None = None,
) -> AuthSettings:
    """Auth settings for a server on ``host``: login whenever not loopback or when users are configured."""
    env = os.environ if env is None else env
    path = users_file or (Path(env[USERS_ENV]) if env.get(USERS_ENV) else None)
    users = load_users(path) if path else {}
    required = bool(users) or not is_loopback(host)
    secret = env.get(SECRET_ENV, "")
    problems = []
    if required or secret:
        problems += secret_problems(secret)
    if required and not users:
        problems.append(Problem(path=USERS_ENV, message=f"listening on {host!r} requires login: give a users file",
                                got=None))
    if problems:
        raise ConfigError("dashboard", problems)
    return AuthSettings(login_required=required, secret_key=secret or secrets.token_hex(32), users=users,
                        protected=dict(protected or {}), users_file=path, secure_cookie=secure_cookie,
                        session_lifetime_s=session_lifetime_s, idle_timeout_s=idle_timeout_s,
                        max_body_bytes=max_body_bytes, throttle=throttle or ThrottlePolicy())


@dataclass(slots=True)
class _Session:
    user: str
    fingerprint: str  # of the user's password hash when the session began
    started: float
    seen: float


def _fingerprint(password_hash: str) -> str:
    return hashlib.sha256(password_hash.encode("utf-8")).hexdigest()


class SessionStore:
    """Server-side sessions by random id; thread-safe. Ended sessions are forgotten, so their cookies fail."""

    def __init__(self, *, lifetime_s: float, idle_s: float, clock: Callable[[], float] = time.monotonic,
                 max_sessions: int = 10_000) -> None:
        self.lifetime_s, self.idle_s, self.clock, self.max_sessions = lifetime_s, idle_s, clock, max_sessions
        self._sessions: dict[str, _Session] = {}
        self._lock = threading.Lock()

    def begin(self, user: User) -> str:
        now = self.clock()
        sid = secrets.token_urlsafe(32)
        with self._lock:
            self._sessions = {k: s for k, s in self._sessions.items() if self._alive(s, now)}
            while len(self._sessions) >= self.max_sessions:  # the oldest session gives way
                del self._sessions[min(self._sessions, key=lambda k: self._sessions[k].seen)]
            self._sessions[sid] = _Session(user=user.name, fingerprint=_fingerprint(user.password_hash),
                                           started=now, seen=now)
        return sid

    def _alive(self, s: _Session, now: float) -> bool:
        return now - s.started < self.lifetime_s and now - s.seen < self.idle_s

    def user_of(self, sid: str, users: Mapping[str, User]) -> User | None:
        """The user of a live session whose password has not changed since; ends the session otherwise."""
        now = self.clock()
        with self._lock:
            s = self._sessions.get(sid)
            if s is None:
                return None
            user = users.get(s.user)
            if not self._alive(s, now) or user is None or _fingerprint(user.password_hash) != s.fingerprint:
                del self._sessions[sid]
                log.info("session of %s ended (%s)", s.user, "expired" if user is not None and not self._alive(
                    s, now) else "user removed or password changed")
                return None
            s.seen = now
            return user

    def end(self, sid: str) -> None:
        with self._lock:
            self._sessions.pop(sid, None)

    def __len__(self) -> int:
        with self._lock:
            return len(self._sessions)


class LoginThrottle:
    """Failed sign-ins per user name and per client address, and the lockouts they earn; thread-safe."""

    def __init__(self, policy: ThrottlePolicy, *, clock: Callable[[], float] = time.monotonic,
                 max_keys: int = 100_000) -> None:
        self.policy, self.clock, self.max_keys = policy, clock, max_keys
        self._failures: dict[tuple[str, str], list[float]] = {}
        self._locked_until: dict[tuple[str, str], float] = {}
        self._lock = threading.Lock()

    @staticmethod
    def _keys(user: str, address: str) -> tuple[tuple[str, str], tuple[str, str]]:
        return ("user", user[:200]), ("address", address)

    def wait_s(self, user: str, address: str) -> float:
        """Seconds until ``user`` may try again from ``address`` (0: now)."""
        now = self.clock()
        with self._lock:
            return max(0.0, *(self._locked_until.get(k, now) - now for k in self._keys(user, address)))

    def failed(self, user: str, address: str) -> float:
        """Count a failed sign-in; returns the lockout it starts (0: none yet)."""
        p = self.policy
        now = self.clock()
        lock = 0.0
        with self._lock:
            if len(self._failures) >= self.max_keys:
                self._prune(now)
            for key, limit in zip(self._keys(user, address), (p.user_failures, p.address_failures), strict=True):
                times = [t for t in self._failures.get(key, []) if now - t < p.window_s]
                times.append(now)
                self._failures[key] = times
                if len(times) >= limit:
                    this = min(p.max_lock_s, p.first_lock_s * 2.0 ** (len(times) - limit))
                    self._locked_until[key] = max(self._locked_until.get(key, now), now + this)
                    lock = max(lock, this)
        return lock

    def succeeded(self, user: str) -> None:
        """A correct sign-in clears the user name's failures.

        Not the address's: one good account must not reset the count of an address guessing at others.
        """
        key = self._keys(user, "")[0]
        with self._lock:
            self._failures.pop(key, None)
            self._locked_until.pop(key, None)

    def _prune(self, now: float) -> None:
        window = self.policy.window_s
        for key in [k for k, ts in self._failures.items() if not ts or now - ts[-1] >= window]:
            if self._locked_until.get(key, now) <= now:
                self._failures.pop(key, None)
                self._locked_until.pop(key, None)
        while len(self._failures) >= self.max_keys:  # still full: forget the stalest keys
            oldest = min(self._failures, key=lambda k: self._failures[k][-1] if self._failures[k] else 0.0)
            self._failures.pop(oldest, None)
            self._locked_until.pop(oldest, None)


class _Users:
    """The users, re-read from their file when it changes (checked at most once a second)."""

    def __init__(self, users: Mapping[str, User], path: Path | None) -> None:
        self.users, self.path = dict(users), path
        self._stamp = self._stat()
        self._checked = time.monotonic()
        self._lock = threading.Lock()

    def _stat(self) -> tuple[int, int] | None:
        try:
            st = self.path.stat() if self.path else None
        except OSError:
            return None
        return (st.st_mtime_ns, st.st_size) if st else None

    def current(self) -> Mapping[str, User]:
        if self.path is None:
            return self.users
        with self._lock:
            if time.monotonic() - self._checked >= 1.0:
                self._checked = time.monotonic()
                stamp = self._stat()
                if stamp != self._stamp:
                    self._stamp = stamp
                    try:
                        self.users = load_users(self.path)
                        log.info("users re-read from %s: %d users", self.path, len(self.users))
                    except ConfigError as exc:  # a half-edited file: keep the users as they were
                        log.error("users file changed but cannot be used, keeping the previous users: %s", exc)
            return self.users


@dataclass(frozen=True, slots=True, kw_only=True)
class _State:
    sessions: SessionStore
    throttle: LoginThrottle
    users: _Users


def _settings(app: flask.Flask | None = None) -> AuthSettings:
    settings: AuthSettings = (app or flask.current_app).config[CONFIG_KEY]
    return settings


def _state(app: flask.Flask | None = None) -> _State:
    state: _State = (app or flask.current_app).config[STATE_KEY]
    return state


def current_user() -> CurrentUser | None:
    """The logged-in user of the current request (the trusted local admin when no login is required)."""
    settings = _settings()
    if not settings.login_required:
        return LOCAL_ADMIN
    sid = flask.session.get("sid")
    if not isinstance(sid, str):
        return None
    state = _state()
    user = state.sessions.user_of(sid, state.users.current())
    return CurrentUser(name=user.name, role=user.role) if user else None


def require(user: CurrentUser | None, role: UserRole, action: str) -> CurrentUser:
    """Return ``user`` if it may do ``action`` (needs ``role``); raise ``Forbidden`` otherwise."""
    if user is None or not user.may(role):
        who = user.name if user else "anonymous"
        log.warning("refused %s to %s (needs %s)", action, who, role.name.lower())
        raise Forbidden(f"{action} needs the {role.name.lower()} role ({who} is "
                        f"{user.role.name.lower() if user else 'not logged in'})")
    return user


def _serializer(settings: AuthSettings, salt: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(settings.secret_key, salt=salt)


def sign(settings: AuthSettings, payload: Any, *, salt: str) -> str:
    """A signed, timestamped token of ``payload`` (e.g. a what-if run authorised by the server)."""
    return _serializer(settings, salt).dumps(payload)


def verify(settings: AuthSettings, token: str, *, salt: str, max_age_s: int) -> Any:
    """The payload of a token made by ``sign``; ``Forbidden`` if forged or expired."""
    try:
        return _serializer(settings, salt).loads(token, max_age=max_age_s)
    except BadSignature as exc:
        raise Forbidden("invalid or expired authorisation token") from exc


_LOGIN_PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>Sign in · Micro-factory twin</title>
<link rel="stylesheet" href="{assets}hmi.css"></head><body class="login-body"><form method="post" class="login-box">
<h1>Micro-factory twin</h1><p class="muted">Sign in to continue</p>{error}
<label>User <input name="username" autocomplete="username" required autofocus></label>
<label>Password <input name="password" type="password" autocomplete="current-password" required></label>
<input type="hidden" name="next" value="{next}"><button type="submit">Sign in</button></form></body></html>"""


def _safe_next(target: str | None) -> str:
    if not target:
        return "/"
    parsed = urlparse(target)
    return target if not parsed.scheme and not parsed.netloc and target.startswith("/") else "/"


def too_large_message(limit: int, got: int | None = None) -> str:
    """The 413 answer: the limit, what was sent, and the setting that raises the limit."""
    sent = f" (got {got:,} bytes)" if got is not None else ""
    return (f"request body too large: at most {limit:,} bytes{sent}; "
            "the limit is set by twin dashboard --max-body-mb")


def install(server: flask.Flask, settings: AuthSettings, *, public_prefixes: Iterable[str] = ("/assets/",)) -> None:
    """Configure server-side sessions, login/logout, the sign-in throttle, the body limit and the request guard."""
    server.config[CONFIG_KEY] = settings
    state = _State(sessions=SessionStore(lifetime_s=settings.session_lifetime_s, idle_s=settings.idle_timeout_s),
                   throttle=LoginThrottle(settings.throttle), users=_Users(settings.users, settings.users_file))
    server.config[STATE_KEY] = state
    server.secret_key = settings.secret_key
    server.config.update(SESSION_COOKIE_HTTPONLY=True, SESSION_COOKIE_SAMESITE="Lax",
                         SESSION_COOKIE_NAME="twin_session", SESSION_COOKIE_SECURE=settings.secure_cookie,
                         PERMANENT_SESSION_LIFETIME=timedelta(seconds=settings.session_lifetime_s),
                         # bodies without a length (chunked) are cut off when read past the limit
                         MAX_CONTENT_LENGTH=settings.max_body_bytes)
    public = tuple(public_prefixes)

    @server.errorhandler(413)
    def too_large(_exc: Exception) -> Any:
        return flask.Response(too_large_message(settings.max_body_bytes), status=413, mimetype="text/plain")

    def login() -> Any:
        error = ""
        status = 200
        headers: dict[str, str] = {}
        nxt = _safe_next(flask.request.values.get("next"))
        if flask.request.method == "POST":
            name = flask.request.form.get("username", "")
            password = flask.request.form.get("password", "")
            address = flask.request.remote_addr or ""
            wait = state.throttle.wait_s(name, address)
            if wait > 0:  # refused without looking at the password: the right one too
                log.warning("sign-in for %r from %s refused: locked for %.0f s", name[:200], address, wait)
                error = f"Too many failed sign-ins, try again in {math.ceil(wait)} s"
                status = 429
                headers["Retry-After"] = str(math.ceil(wait))
            else:
                user = state.users.current().get(name)
                ok = check_password_hash(user.password_hash if user else _DUMMY_HASH, password)
                if user is not None and ok:
                    state.throttle.succeeded(name)
                    old = flask.session.get("sid")
                    if isinstance(old, str):
                        state.sessions.end(old)
                    flask.session.clear()
                    flask.session["sid"] = state.sessions.begin(user)
                    flask.session.permanent = True
                    log.info("user %s logged in", user.name)
                    return flask.redirect(nxt)
                lock = state.throttle.failed(name, address)
                log.warning("failed login for %r from %s", name[:200], address)
                error = "Unknown user or wrong password"
                if lock > 0:
                    error += f". Too many failed sign-ins, try again in {math.ceil(lock)} s"
                status = 401
            error = f'<p class="login-error">{html.escape(error)}</p>'
        page = _LOGIN_PAGE.format(assets=html.escape("/assets/"), error=error, next=html.escape(nxt))
        return flask.Response(page, status=status, mimetype="text/html", headers=headers)

    def logout() -> Any:
        sid = flask.session.get("sid")
        if isinstance(sid, str):
            state.sessions.end(sid)
        flask.session.clear()
        return flask.redirect("/login")

    server.add_url_rule("/login", "twin_login", login, methods=["GET", "POST"])
    server.add_url_rule("/logout", "twin_logout", logout)

    @server.before_request
    def guard() -> Any:
        length = flask.request.content_length
        if length is not None and length > settings.max_body_bytes:  # before anything reads the body
            log.warning("refused a %d-byte body to %s from %s", length, flask.request.path,
                        flask.request.remote_addr)
            return flask.Response(too_large_message(settings.max_body_bytes, length), status=413,
                                  mimetype="text/plain", headers={"Connection": "close"})
        path = flask.request.path
        if path in ("/login", "/logout") or path.startswith(public):
            return None
        user = current_user()
        if user is None:
            if path.startswith("/_dash-"):
                return flask.Response("login required", status=401)
            return flask.redirect(f"/login?next={flask.request.full_path.rstrip('?')}")
        if path == "/_dash-update-component" and settings.protected:
            body = flask.request.get_json(silent=True) or {}
            output = str(body.get("output", "")) if isinstance(body, dict) else ""
            for component, role in settings.protected.items():
                if component in output and not user.may(role):
                    log.warning("refused callback %s to %s", output, user.name)
                    return flask.Response(f"forbidden: needs {role.name.lower()}", status=403)
        return None
