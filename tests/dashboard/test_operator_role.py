"""The operator role (between viewer and engineer), and classifying stops from the Site and Machine pages.

ISA-18.2 practice: the operator acknowledges alarms, gives stops their reason and shelves alarms (one-shot
or timed); taking an alarm out of service, and back, is the engineer's (maintenance under management of
change). The history is ``history.py``'s, up to ``NOW`` (Wednesday 12:00 UTC): Berlin's P3 stops reporting
at 11:44:03, the one stop of the early shift that needs a person (test_shift_view.py).
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime
from pathlib import Path

import pytest
from werkzeug.security import generate_password_hash

from app.report import DashboardReports
from connectors.store import SqliteHistorian
from dashboard import ids
from dashboard.app import PROTECTED_OUTPUTS, create_app
from dashboard.auth import CurrentUser, Forbidden, UserRole, load_users, settings_for
from dashboard.pages._shared import acknowledge
from dashboard.queries import QueryService
from dashboard.services import Services
from dashboard.shift_view import ShiftService, authorise_shelving, stop_id
from twin.errors import ConfigError
from twin.spec import FleetSpec

P3_STALE = datetime.fromisoformat("2026-01-07T11:44:03+00:00")
OLGA = CurrentUser(name="olga", role=UserRole.OPERATOR)
VERA = CurrentUser(name="vera", role=UserRole.VIEWER)
ERIN = CurrentUser(name="erin", role=UserRole.ENGINEER)


@pytest.fixture
def shifts(queries: QueryService, historian: SqliteHistorian, fleet: FleetSpec) -> ShiftService:
    return ShiftService(queries=queries, reports=DashboardReports(lambda: historian, fleet))


def test_the_users_file_knows_the_operator_role(tmp_path: Path) -> None:
    users = tmp_path / "users.toml"
    users.write_text(f'[users.olga]\nrole = "operator"\npassword_hash = "{generate_password_hash("pw")}"\n')
    assert load_users(users)["olga"].role is UserRole.OPERATOR
    assert UserRole.VIEWER < UserRole.OPERATOR < UserRole.ENGINEER < UserRole.ADMIN
    users.write_text(f'[users.b]\nrole = "boss"\npassword_hash = "{generate_password_hash("pw")}"\n')
    with pytest.raises(ConfigError, match=r"users.b.role: must be viewer, operator, engineer or admin \(got 'boss'\)"):
        load_users(users)


def test_operators_shelve_engineers_take_out_of_service() -> None:
    assert authorise_shelving(OLGA, "shelved") is OLGA
    assert authorise_shelving(OLGA, "unshelved") is OLGA
    with pytest.raises(Forbidden, match=r"^taking alarms out of service needs the engineer role \(olga is operator\)$"):
        authorise_shelving(OLGA, "out_of_service")
    with pytest.raises(Forbidden, match=r"^returning alarms to service needs the engineer role \(olga is operator\)$"):
        authorise_shelving(OLGA, "in_service")
    with pytest.raises(Forbidden, match=r"^shelving alarms needs the operator role \(vera is viewer\)$"):
        authorise_shelving(VERA, "shelved")
    assert authorise_shelving(ERIN, "out_of_service") is ERIN


def test_an_operator_acknowledges_a_viewer_may_not(queries: QueryService) -> None:
    rows = [{"site": "pod-berlin", "key": "stock-below-reorder:PLA-1KG", "acknowledged": False}]
    with pytest.raises(Forbidden, match=r"^acknowledging alarms needs the operator role \(vera is viewer\)$"):
        acknowledge(queries, VERA, rows, "")
    assert acknowledge(queries, OLGA, rows, "seen") == "1 alarm(s) acknowledged by olga."


def test_the_machine_pages_list_classified_by_an_operator_through_the_shift_path(shifts: ShiftService) -> None:
    found = shifts.needing_reason("pod-berlin", "P3")
    # P3 unknown from 11:44:03 to just after 12:00 (the shift so far): 957 s, in today's early shift
    assert [(w.name, s.machine, s.start, round(s.seconds)) for w, s in found] == [("early", "P3", P3_STALE, 957)]
    assert shifts.needing_reason("pod-berlin", "P1") == []
    w = found[0][0]
    pick = [(stop_id("P3", P3_STALE, w), "blocked")]
    with pytest.raises(Forbidden, match=r"^classifying stops needs the operator role \(vera is viewer\)$"):
        shifts.record_reasons(site="pod-berlin", user=VERA, picks=pick, comment="")
    assert shifts.needing_reason("pod-berlin") == found  # nothing recorded
    assert shifts.record_reasons(site="pod-berlin", user=OLGA, picks=pick, comment="outfeed full") == \
        "1 stop(s) classified by olga."
    assert shifts.needing_reason("pod-berlin") == []  # the site page's list is empty now
    stop = next(s for s in shifts.report("pod-berlin", w).stops if s.machine == "P3" and s.start == P3_STALE)
    assert (stop.reason, stop.by, stop.comment) == ("blocked", "olga", "outfeed full")
    # the same pick again changes nothing: the stop has that reason already
    assert shifts.record_reasons(site="pod-berlin", user=OLGA, picks=pick, comment="") == \
        "Choose a reason for at least one stop."


def test_the_request_guard_lets_an_operator_classify_and_refuses_a_viewer(services: Services, shifts: ShiftService,
                                                                        tmp_path: Path) -> None:
    users = tmp_path / "users.toml"
    users.write_text("".join(f'[users.{n}]\nrole = "{r}"\npassword_hash = "{generate_password_hash(n + "-pw")}"\n'
                             for n, r in (("vera", "viewer"), ("olga", "operator"))))
    auth = settings_for("0.0.0.0", env={"TWIN_SECRET_KEY": "test-session-secret-0123456789abcdef"},
                        users_file=users, protected=PROTECTED_OUTPUTS)
    app = create_app(replace(services, extra={**services.extra, "shift": shifts}), auth=auth)

    def post(user: str, output: str, button: str) -> int:
        client = app.server.test_client()
        client.post("/login", data={"username": user, "password": f"{user}-pw"})
        body = {"output": output, "outputs": {"id": output.split(".")[0], "property": output.split(".")[1]},
                "inputs": [{"id": button, "property": "n_clicks", "value": 1}],
                "changedPropIds": [f"{button}.n_clicks"], "state": []}
        return int(client.post("/_dash-update-component", data=json.dumps(body),
                               content_type="application/json").status_code)

    for output, button in ((ids.SITE_CLASSIFY_RESULT, ids.SITE_CLASSIFY),
                           (ids.MACHINE_CLASSIFY_RESULT, ids.MACHINE_CLASSIFY)):
        assert post("vera", f"{output}.children", button) == 403
        assert post("olga", f"{output}.children", button) != 403  # past the guard (the callback checks again)
