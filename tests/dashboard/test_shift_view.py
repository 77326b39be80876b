"""The Shift page's service on the dashboard history (``history.py``, up to ``NOW``, Wednesday 12:00 UTC): its
shifts, and what it refuses before anything is recorded. The collector's own checks and the way through it
are ``tests/connectors/test_operator_events.py`` and ``test_shift_browser.py``."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from conftest import NOW
from werkzeug.security import generate_password_hash

from app.report import DashboardReports
from connectors.store import SqliteHistorian
from dashboard import ids
from dashboard.app import PROTECTED_OUTPUTS, create_app
from dashboard.auth import settings_for
from dashboard.queries import QueryService
from dashboard.services import Services
from dashboard.shift_view import SO_FAR_MARGIN, ShiftService
from twin.errors import AlarmError
from twin.spec import FleetSpec
from twin.state import EventKind

P3_STALE = datetime.fromisoformat("2026-01-07T11:44:03+00:00")


@pytest.fixture
def shifts(queries: QueryService, historian: SqliteHistorian, fleet: FleetSpec) -> ShiftService:
    return ShiftService(queries=queries, reports=DashboardReports(lambda: historian, fleet))


def test_the_shifts_offered_newest_first_the_current_one_so_far(shifts: ShiftService) -> None:
    shown = shifts.windows("pod-berlin")
    # Berlin: early 06:00-14:00 and late 14:00-22:00 local (CET: UTC+1), Monday to Friday
    assert [(w.name, w.start.isoformat(), w.end) for w in shown[:3]] == [
        ("early", "2026-01-07T05:00:00+00:00", NOW + SO_FAR_MARGIN),
        ("late", "2026-01-06T13:00:00+00:00", NOW - timedelta(hours=15)),
        ("early", "2026-01-06T05:00:00+00:00", NOW - timedelta(hours=23))]
    assert shifts.window("pod-berlin", "2026-01-06T13:00:00+00:00") == shown[1]
    assert shifts.window("pod-berlin", "not a time") == shown[0]


def test_what_is_refused_before_anything_is_recorded(shifts: ShiftService, historian: SqliteHistorian) -> None:
    w = shifts.windows("pod-berlin")[0]
    with pytest.raises(AlarmError, match=r"^reason: 'coffee' is not in the downtime tree of pod-berlin \("):
        shifts.classify(site="pod-berlin", window=w, machine="P3", start=P3_STALE, reason="coffee", user="ana",
                        comment="")
    with pytest.raises(AlarmError, match=r"no stop of P1 at 2026-01-07T11:44:03\+00:00 that needs a person"):
        shifts.classify(site="pod-berlin", window=w, machine="P1", start=P3_STALE, reason="blocked", user="ana",
                        comment="")
    key = "stock-below-reorder:PLA-1KG"
    with pytest.raises(AlarmError, match=r"^comment: say why"):
        shifts.shelve(site="pod-berlin", window=w, key=key, change="shelved", user="ana", comment=" ")
    with pytest.raises(AlarmError, match=r"^duration: more than 0 and at most 480 min \(got 481\)"):
        shifts.shelve(site="pod-berlin", window=w, key=key, change="shelved", user="ana", comment="x", timed_min=481)
    with pytest.raises(AlarmError, match=r"^no alarm 'hot:P9' at pod-berlin in this shift or active now"):
        shifts.shelve(site="pod-berlin", window=w, key="hot:P9", change="shelved", user="ana", comment="x")
    assert not [e for e in historian.events("pod-berlin", NOW - timedelta(hours=8), NOW + timedelta(hours=1))
                if e.kind in (EventKind.STOP_CLASSIFIED, EventKind.ALARM_SHELVING)]


def test_a_classification_changes_the_report(shifts: ShiftService) -> None:
    w = shifts.windows("pod-berlin")[0]
    before = shifts.report("pod-berlin", w)
    # P3 unknown from 11:44:03 to just after 12:00: 957 s that need a person
    assert [(r.reason, round(r.seconds)) for r in before.pareto if r.reason in (None, "blocked")] == [(None, 957)]
    event = shifts.classify(site="pod-berlin", window=w, machine="P3", start=P3_STALE, reason="blocked",
                            user="ana", comment="outfeed full")
    assert event.data["start"] == "2026-01-07T11:44:03+00:00"
    after = shifts.report("pod-berlin", w)  # the cache was dropped: read again
    assert [(r.reason, round(r.seconds)) for r in after.pareto if r.reason in (None, "blocked")] == [("blocked", 957)]
    stop = next(s for s in after.stops if s.machine == "P3" and s.start == P3_STALE)
    assert (stop.by, stop.classified_at, stop.comment) == ("ana", NOW, "outfeed full")


def test_a_viewer_may_read_the_shift_but_not_classify_or_shelve(services: Services, shifts: ShiftService,
                                                                 tmp_path: Path) -> None:
    users = tmp_path / "users.toml"
    users.write_text(f'[users.vera]\nrole = "viewer"\npassword_hash = "{generate_password_hash("vera-pw")}"\n')
    auth = settings_for("0.0.0.0", env={"TWIN_SECRET_KEY": "test-session-secret-0123456789abcdef"},
                        users_file=users, protected=PROTECTED_OUTPUTS)
    app = create_app(replace(services, extra={**services.extra, "shift": shifts}), auth=auth)
    client = app.server.test_client()
    client.post("/login", data={"username": "vera", "password": "vera-pw"})
    client.get("/_dash-layout")

    def post(output: str, button: str) -> int:
        body = {"output": output, "outputs": {"id": output.split(".")[0], "property": output.split(".")[1]},
                "inputs": [{"id": button, "property": "n_clicks", "value": 1}],
                "changedPropIds": [f"{button}.n_clicks"], "state": []}
        return int(client.post("/_dash-update-component", data=json.dumps(body),
                               content_type="application/json").status_code)

    assert post(f"{ids.SHIFT_CLASSIFY_RESULT}.children", ids.SHIFT_CLASSIFY) == 403
    assert post(f"{ids.SHIFT_SHELVE_RESULT}.children", ids.SHIFT_SHELVE) == 403
    r = client.get("/shift/report.html?site=pod-berlin&start=2026-01-07T05:00:00%2B00:00")  # reading is allowed
    assert r.status_code == 200 and b"Shift report: Berlin" in r.data
    assert client.get("/shift/report.html?site=pod-berlin&start=2026-01-07T04:00:00%2B00:00").status_code == 404
