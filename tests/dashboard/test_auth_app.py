"""Login, roles enforced on the server, the app factory and page layouts."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from werkzeug.security import generate_password_hash

from dashboard import ids
from dashboard.app import PROTECTED_OUTPUTS, create_app
from dashboard.auth import AuthSettings, CurrentUser, Forbidden, UserRole, is_loopback, load_users, settings_for
from dashboard.pages import alarms, fleet, machine, replay, site, whatif
from dashboard.pages._shared import acknowledge
from dashboard.services import Services
from twin.errors import ConfigError

SECRET = "test-session-secret-0123456789abcdef"  # 36 characters, 26 different: passes the strength check
USERS = """
[users.vera]
role = "viewer"
password_hash = "{viewer}"
[users.erin]
role = "engineer"
password_hash = "{engineer}"
"""


@pytest.fixture(scope="module")
def users_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("users") / "users.toml"
    path.write_text(USERS.format(viewer=generate_password_hash("vera-pw"),
                                 engineer=generate_password_hash("erin-pw")))
    return path


def _settings(users_file: Path) -> AuthSettings:
    return settings_for("0.0.0.0", env={"TWIN_SECRET_KEY": SECRET}, users_file=users_file,
                        protected=PROTECTED_OUTPUTS)


def test_loopback_detection() -> None:
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.5") and not is_loopback("plant.example")


def test_non_loopback_without_users_or_secret_refuses_to_start() -> None:
    with pytest.raises(ConfigError) as err:
        settings_for("0.0.0.0", env={})
    assert "TWIN_SECRET_KEY" in str(err.value) and "TWIN_USERS_FILE" in str(err.value)
    assert not settings_for("127.0.0.1", env={}).login_required


def test_users_file_problems_are_listed(tmp_path: Path) -> None:
    bad = tmp_path / "u.toml"
    bad.write_text('[users.a]\nrole = "boss"\npassword_hash = "plain"\ncolour = 1\n')
    with pytest.raises(ConfigError) as err:
        load_users(bad)
    text = str(err.value)
    assert "users.a.role" in text and "users.a.password_hash" in text and "users.a.colour" in text
    assert "plain" not in text  # a password (hash) is never echoed


def test_login_required_off_loopback(services: Services, users_file: Path) -> None:
    app = create_app(services, auth=_settings(users_file))
    client = app.server.test_client()
    r = client.get("/site")
    assert r.status_code == 302 and "/login" in r.headers["Location"]
    assert client.get("/_dash-layout").status_code == 401
    assert client.post("/login", data={"username": "erin", "password": "wrong"}).status_code == 401
    r = client.post("/login", data={"username": "erin", "password": "erin-pw", "next": "/site"})
    assert r.status_code == 302 and r.headers["Location"] == "/site"
    assert client.get("/_dash-layout").status_code == 200
    assert client.post("/login", data={"username": "x", "password": "y", "next": "https://evil/"}).status_code == 401
    client.get("/logout")
    assert client.get("/_dash-layout").status_code == 401


def _dash_post(client, output: str, inputs: list[dict[str, object]]):  # type: ignore[no-untyped-def]
    body = {"output": output, "outputs": {"id": output.split(".")[0], "property": output.split(".")[1]},
            "inputs": inputs, "changedPropIds": [f"{inputs[0]['id']}.{inputs[0]['property']}"], "state": []}
    return client.post("/_dash-update-component", data=json.dumps(body), content_type="application/json")


def test_viewer_is_refused_protected_callbacks_by_the_server(services: Services, users_file: Path) -> None:
    app = create_app(services, auth=_settings(users_file))
    client = app.server.test_client()
    client.post("/login", data={"username": "vera", "password": "vera-pw"})
    client.get("/_dash-layout")
    r = _dash_post(client, f"{ids.WHATIF_REQUEST}.data", [{"id": ids.WHATIF_RUN, "property": "n_clicks", "value": 1}])
    assert r.status_code == 403
    r = _dash_post(client, f"{ids.ALARMS_ACK_RESULT}.children",
                   [{"id": ids.ALARMS_ACK, "property": "n_clicks", "value": 1}])
    assert r.status_code == 403
    # reading is allowed
    r = _dash_post(client, f"{ids.FLEET_TILES}.children", [{"id": ids.REFRESH, "property": "n_intervals", "value": 1}])
    assert r.status_code != 403


def test_viewer_cannot_start_a_whatif_in_the_callback_itself(services: Services, users_file: Path) -> None:
    settings = _settings(users_file)
    doc = {"name": "n", "site": "pod-berlin", "horizon_h": 24, "replications": 5, "interventions": []}
    with pytest.raises(Forbidden):
        whatif.authorise_run(services, settings, CurrentUser(name="vera", role=UserRole.VIEWER), doc)
    with pytest.raises(Forbidden):
        whatif.authorise_run(services, settings, None, doc)
    ok = whatif.authorise_run(services, settings, CurrentUser(name="erin", role=UserRole.ENGINEER), doc)
    req = whatif.run_request(settings, ok)
    assert req.site == "pod-berlin" and req.replications == 5
    forged = dict(ok, token=ok["token"][:-2] + "xx")
    with pytest.raises(Forbidden):
        whatif.run_request(settings, forged)


def test_invalid_scenario_is_refused_with_every_problem(services: Services, users_file: Path) -> None:
    doc = {"name": "", "site": "pod-berlin", "horizon_h": 0, "replications": 5,
           "interventions": [{"kind": "machine_down", "machine": "NOPE", "start_h": 1, "duration_h": -1}]}
    with pytest.raises(ConfigError) as err:
        whatif.authorise_run(services, _settings(users_file), CurrentUser(name="e", role=UserRole.ADMIN), doc)
    text = str(err.value)
    # run settings, then the engine's own checks, named after the scenario TOML's tables
    for path in ("name", "horizon_h", "machine_down[0].machine", "machine_down[0].duration_h",
                 "machine_down[0].start_h: unknown key"):
        assert path in text


def test_viewer_cannot_acknowledge(services: Services) -> None:
    rows = [{"site": "pod-lyon", "key": "machine-down:CNC1", "acknowledged": False}]
    with pytest.raises(Forbidden):
        acknowledge(services.queries, CurrentUser(name="vera", role=UserRole.VIEWER), rows, "")
    msg = acknowledge(services.queries, CurrentUser(name="erin", role=UserRole.ENGINEER), rows, "ok")
    assert msg == "1 alarm(s) acknowledged by erin."


def test_pages_and_layouts(services: Services) -> None:
    app = create_app(services)
    client = app.server.test_client()
    assert client.get("/").status_code == 200
    deps = client.get("/_dash-dependencies")
    assert deps.status_code == 200
    import dash

    paths = {p["path"] for p in dash.page_registry.values()}
    assert {"/", "/site", "/machine", "/whatif", "/replay", "/alarms"} <= paths
    for module, expected in ((fleet, ids.FLEET_TILES), (site, ids.SITE_TILES), (machine, ids.MACHINE_TREND),
                             (whatif, ids.WHATIF_FAN), (replay, ids.REPLAY_CURSOR), (alarms, ids.ALARMS_GRID)):
        assert expected in str(module.layout().to_plotly_json())


def test_replay_cursor_logic() -> None:
    assert replay.next_cursor(ids.REPLAY_CLOCK, 100, 60, 1000) == 160
    assert replay.next_cursor(ids.REPLAY_STEP_BACK, 30, 60, 1000) == 0  # clamped at the start
    assert replay.next_cursor(ids.REPLAY_STEP, 990, 3600, 1000) == 1000  # and at the end


def test_alarm_csv_export() -> None:
    text = alarms.journal_csv([{"site": "s", "asset": "M1", "priority": "HIGH", "message": 'hot, "very"',
                                "state": "active/unacked", "raised": "t"}])
    lines = text.splitlines()
    assert lines[0].startswith("site,asset,priority,message")
    # 16 columns (ALARM_JOURNAL_FIELDS): the 6 given, 10 empty (cleared .. comment, the 4 shelving ones and
    # probability, predicted_at)
    assert lines[1] == 's,M1,HIGH,"hot, ""very""",active/unacked,t' + "," * 10


def test_import_does_no_io() -> None:
    code = ("import sys; import dashboard.app, dashboard.pages.whatif, dashboard.queries; "
            "print('diskcache' in sys.modules, 'sqlite3' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[2], timeout=60)
    assert out.stdout.split() == ["False", "False"]
