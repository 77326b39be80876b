"""Who may use the dashboard and do what: roles, login, signed sessions and server-side checks.

* Roles: ``viewer`` (reads everything), ``engineer`` (also acknowledges alarms and runs what-ifs),
  ``admin`` (everything). Checks run on the server in every callback that changes something or
  starts work (``require``), and a request guard refuses such callbacks' HTTP requests up front,
  so hiding a button is never the only protection.
* Login is required whenever the server listens on anything but loopback (or when a users file is
  given). Sessions are Flask's signed cookies with the secret from ``TWIN_SECRET_KEY``; passwords
  are stored as werkzeug hashes (``werkzeug.security.generate_password_hash``) in a TOML file::

      [users.alice]
      role = "engineer"
      password_hash = "scrypt:32768:8:1$..."

* On loopback without a users file the single local user is trusted as ``admin`` (a desktop HMI).
"""

from __future__ import annotations

import enum
import html
import ipaddress
import logging
import os
import secrets
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import flask
from itsdangerous import BadSignature, URLSafeTimedSerializer
from werkzeug.security import check_password_hash, generate_password_hash

from twin.errors import ConfigError, Problem, TwinError

__all__ = [
    "AuthSettings",
    "CurrentUser",
    "Forbidden",
    "User",
    "UserRole",
    "current_user",
    "install",
    "is_loopback",
    "load_users",
    "require",
    "settings_for",
]

log = logging.getLogger(__name__)
CONFIG_KEY = "TWIN_AUTH"
SECRET_ENV = "TWIN_SECRET_KEY"
USERS_ENV = "TWIN_USERS_FILE"
_DUMMY_HASH = generate_password_hash("not-a-password")  # equalises timing for unknown users


class UserRole(enum.IntEnum):
    """What a user may do; a higher role may do everything a lower one may."""

    VIEWER = 1
    ENGINEER = 2
    ADMIN = 3


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
class AuthSettings:
    """How the dashboard authenticates. ``protected`` maps component ids of outputs to the role they need."""

    login_required: bool
    secret_key: str = field(repr=False)
    users: Mapping[str, User] = field(default_factory=dict)
    protected: Mapping[str, UserRole] = field(default_factory=dict)

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


def load_users(path: Path) -> dict[str, User]:
    """Users from a TOML file (see the module docstring); ``ConfigError`` listing every problem."""
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(str(path), [Problem(path="", message=f"cannot read users: {exc}", has_got=False)]) from exc
    problems: list[Problem] = []
    users: dict[str, User] = {}
    raw = doc.get("users")
    if not isinstance(raw, dict) or not raw:
        raise ConfigError(str(path), [Problem(path="users", message="no users defined", got=raw)])
    for name, entry in raw.items():
        where = f"users.{name}"
        if not isinstance(entry, dict):
            problems.append(Problem(path=where, message="must be a table", got=entry))
            continue
        role = entry.get("role")
        if role not in {r.name.lower() for r in UserRole}:
            problems.append(Problem(path=f"{where}.role", message="must be viewer, engineer or admin", got=role))
        pw = entry.get("password_hash")
        if not isinstance(pw, str) or ":" not in pw:
            problems.append(Problem(path=f"{where}.password_hash", message="must be a werkzeug password hash",
                                    got="(hidden)"))
        for key in sorted(set(entry) - {"role", "password_hash"}):
            problems.append(Problem(path=f"{where}.{key}", message="unknown key", got=entry[key]))
        if not any(p.path.startswith(where) for p in problems):
            users[name] = User(name=name, role=UserRole[str(role).upper()], password_hash=str(pw))
    if problems:
        raise ConfigError(str(path), problems)
    return users


def settings_for(
    host: str,
    *,
    env: Mapping[str, str] | None = None,
    users_file: Path | None = None,
    protected: Mapping[str, UserRole] | None = None,
) -> AuthSettings:
    """Auth settings for a server on ``host``: login whenever not loopback or when users are configured."""
    env = os.environ if env is None else env
    path = users_file or (Path(env[USERS_ENV]) if env.get(USERS_ENV) else None)
    users = load_users(path) if path else {}
    required = bool(users) or not is_loopback(host)
    secret = env.get(SECRET_ENV, "")
    problems = []
    if required and len(secret) < 16:
        problems.append(Problem(path=SECRET_ENV, message="login is required (not loopback or users given): set a "
                                "secret of at least 16 characters", got="(unset)" if not secret else "(too short)"))
    if required and not users:
        problems.append(Problem(path=USERS_ENV, message=f"listening on {host!r} requires login: give a users file",
                                got=None))
    if problems:
        raise ConfigError("dashboard", problems)
    return AuthSettings(login_required=required, secret_key=secret or secrets.token_hex(32), users=users,
                        protected=dict(protected or {}))


def _settings(app: flask.Flask | None = None) -> AuthSettings:
    settings: AuthSettings = (app or flask.current_app).config[CONFIG_KEY]
    return settings


def current_user() -> CurrentUser | None:
    """The logged-in user of the current request (the trusted local admin when no login is required)."""
    settings = _settings()
    if not settings.login_required:
        return LOCAL_ADMIN
    name = flask.session.get("user")
    user = settings.users.get(name) if isinstance(name, str) else None
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


def install(server: flask.Flask, settings: AuthSettings, *, public_prefixes: Iterable[str] = ("/assets/",)) -> None:
    """Configure signed sessions, the login/logout routes and the request guard on ``server``."""
    server.config[CONFIG_KEY] = settings
    server.secret_key = settings.secret_key
    server.config.update(SESSION_COOKIE_HTTPONLY=True, SESSION_COOKIE_SAMESITE="Lax",
                         SESSION_COOKIE_NAME="twin_session")
    public = tuple(public_prefixes)

    def login() -> Any:
        error = ""
        nxt = _safe_next(flask.request.values.get("next"))
        if flask.request.method == "POST":
            name = flask.request.form.get("username", "")
            password = flask.request.form.get("password", "")
            user = settings.users.get(name)
            ok = check_password_hash(user.password_hash if user else _DUMMY_HASH, password)
            if user is not None and ok:
                flask.session.clear()
                flask.session["user"] = user.name
                log.info("user %s logged in", user.name)
                return flask.redirect(nxt)
            log.warning("failed login for %r", name)
            error = '<p class="login-error">Unknown user or wrong password</p>'
        page = _LOGIN_PAGE.format(assets=html.escape("/assets/"), error=error, next=html.escape(nxt))
        return flask.Response(page, status=401 if error else 200, mimetype="text/html")

    def logout() -> Any:
        flask.session.clear()
        return flask.redirect("/login")

    server.add_url_rule("/login", "twin_login", login, methods=["GET", "POST"])
    server.add_url_rule("/logout", "twin_logout", logout)

    @server.before_request
    def guard() -> Any:
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
            output = str(body.get("output", ""))
            for component, role in settings.protected.items():
                if component in output and not user.may(role):
                    log.warning("refused callback %s to %s", output, user.name)
                    return flask.Response(f"forbidden: needs {role.name.lower()}", status=403)
        return None
