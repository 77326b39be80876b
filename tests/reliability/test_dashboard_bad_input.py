"""Malformed callback requests get 400 with the reason, never a 500 (issue 18: ``replications 10**400`` and
acknowledgement rows without ``key`` raised OverflowError / KeyError in the callbacks).

Real HTTP to the dashboard on werkzeug's threaded server, signed in as an engineer. No page sends
these bodies (a number field cannot hold 10**400, the grid's rows always have a key): they are
crafted requests, answered as bad requests naming what is wrong.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from dashboard import ids
from dashboard.app import PROTECTED_OUTPUTS, create_app
from dashboard.auth import settings_for
from dashboard.services import Services
from tests.conftest import free_port
from tests.dashboard.serve import serving
from tests.reliability.dashboard_rig import SECRET, Client, make_plant, open_queries

pytestmark = [pytest.mark.server]


class NoRun:
    """A what-if runner that must never be reached: the requests are refused before a run starts."""

    def run(self, request: Any, progress: Any) -> Any:
        raise AssertionError("a malformed request reached the what-if runner")


@pytest.fixture(scope="module")
def engineer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Client]:
    root = make_plant(tmp_path_factory.mktemp("bad-input"))
    queries, store = open_queries(root)
    auth = settings_for("0.0.0.0", env={"TWIN_SECRET_KEY": SECRET}, users_file=root / "users.toml",
                        protected=PROTECTED_OUTPUTS)
    app = create_app(Services(queries=queries, whatif=NoRun(), cache_dir=root / "jobs"), auth=auth)
    try:
        with serving(app, free_port()) as url:
            c = Client(url)
            assert c.login("erin", "erin-pw")[0] == 302
            yield c
    finally:
        store.close()


def _post(c: Client, body: str) -> tuple[int, str]:
    status, _, text = c.request("POST", "/_dash-update-component", body.encode(), {"Content-Type": "application/json"})
    return status, text


def _ack_body(rows: Any) -> str:
    return json.dumps({
        "output": f"{ids.ALARMS_ACK_RESULT}.children",
        "outputs": {"id": ids.ALARMS_ACK_RESULT, "property": "children"},
        "inputs": [{"id": ids.ALARMS_ACK, "property": "n_clicks", "value": 1}],
        "state": [{"id": ids.ALARMS_GRID, "property": "selectedRows", "value": rows},
                  {"id": ids.ALARMS_COMMENT, "property": "value", "value": ""}],
        "changedPropIds": [f"{ids.ALARMS_ACK}.n_clicks"]})


@pytest.mark.parametrize(("rows", "reason"), [
    ([{"site": "pod-lyon"}], "selectedRows[0]: an alarm row needs a site and a key, both text"),
    ([{"site": "pod-lyon", "key": "machine-down:CNC1"}, {"key": 5, "site": "pod-lyon"}],
     "selectedRows[1]: an alarm row needs a site and a key, both text"),
    (["machine-down:CNC1"], "selectedRows[0]: an alarm row needs a site and a key, both text"),
    ("machine-down:CNC1", "selectedRows: must be a list of alarm rows (got str)"),
])
def test_ack_rows_without_a_key_are_a_bad_request(engineer: Client, rows: Any, reason: str) -> None:
    status, text = _post(engineer, _ack_body(rows))
    assert status == 400 and reason in text, text


def test_replications_of_400_digits_are_a_bad_request(engineer: Client) -> None:
    state = [(ids.WHATIF_SCENARIO, "data", {"interventions": []}), (ids.WHATIF_NAME, "value", "x"),
             (ids.WHATIF_SITE, "value", "pod-berlin"), (ids.WHATIF_AT, "value", None),
             (ids.WHATIF_HORIZON, "value", 24)]
    items = [json.dumps({"id": i, "property": p, "value": v}) for i, p, v in state]
    # 10**400 written out: JSON allows integers of any length, Python reads it exactly; float() cannot hold it
    items.append(json.dumps({"id": ids.WHATIF_REPLICATIONS, "property": "value", "value": 0}).replace(
        '"value": 0', '"value": 1' + "0" * 400))
    body = (f'{{"output": "..{ids.WHATIF_REQUEST}.data...{ids.WHATIF_STATUS}.children..", '
            f'"outputs": [{{"id": "{ids.WHATIF_REQUEST}", "property": "data"}}, '
            f'{{"id": "{ids.WHATIF_STATUS}", "property": "children"}}], '
            f'"inputs": [{{"id": "{ids.WHATIF_RUN}", "property": "n_clicks", "value": 1}}], '
            f'"state": [{", ".join(items)}], "changedPropIds": ["{ids.WHATIF_RUN}.n_clicks"]}}')
    status, text = _post(engineer, body)
    assert status == 400 and "not a usable number: larger than 1.8e+308" in text, text
