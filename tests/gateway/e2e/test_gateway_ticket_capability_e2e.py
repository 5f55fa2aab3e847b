"""Issue 15, Found 2, as an attacker tried it: an agency's display key (or no key at all) and the
public routes must not yield another citizen's rating token. On the old code the board's
snapshot named the ticket, ``GET /v1/tickets/{id}`` answered anyone with ``rating.token``, and
the token rated in the citizen's place. Now only the ticket's access code opens it."""

from __future__ import annotations

import pytest
import requests

from tests.gateway.e2e.test_gateway_tenancy_e2e import bearer, make_agency
from tests.support.infra import wait_until

pytestmark = pytest.mark.e2e


def free_service(url: str, agency: dict) -> str:
    answer = requests.post(
        f"{url}/v1/agencies/{agency['id']}/services",
        headers=bearer(agency["keys"]["agency_admin"]),
        json={"code": "FREE", "name": "Legalisir", "fee_idr": 0, "sla_minutes": 30, "prefix": "L"},
    )
    assert answer.status_code == 201, answer.text
    service = answer.json()["id"]
    counter = agency["counter"]
    updated = requests.patch(
        f"{url}/v1/agencies/{agency['id']}/counters/{counter}",
        headers=bearer(agency["keys"]["agency_admin"]),
        json={"service_ids": [agency["service"], service]},
    )
    assert updated.status_code == 200, updated.text
    return service


def test_a_board_or_a_ticket_id_opens_no_ticket_only_its_code_does(shared_mall):
    url = shared_mall.url
    a, b = make_agency(url, "CAPA"), make_agency(url, "CAPB")
    service = free_service(url, a)
    taken = requests.post(f"{url}/v1/tickets", json={"service_id": service}, timeout=10)
    assert taken.status_code == 201, taken.text
    ticket = taken.json()
    ticket_id, code = ticket["id"], ticket["access_code"]
    assert len(code) == 22
    officer = bearer(a["keys"]["officer"])
    called = requests.post(f"{url}/v1/counters/{a['counter']}/call-next", headers=officer)
    assert called.status_code == 200 and called.json()["id"] == ticket_id, called.text
    assert called.json()["access_code"] is None  # staff never see the citizen's code

    # another agency's officer cannot call it from a counter of their own: 403, not a 409 that
    # tells the ticket exists and what it is for
    other = requests.post(
        f"{url}/v1/tickets/{ticket_id}/call",
        headers=bearer(b["keys"]["officer"]),
        json={"counter_id": b["counter"]},
    )
    assert other.status_code == 403, other.text

    # the board, with the agency's display key, shows the call and nothing that opens it
    board = requests.get(
        f"{url}/v1/display", headers=bearer(a["keys"]["display"]), params={"agency": a["id"]}
    )
    assert board.status_code == 200, board.text
    assert ticket["number"] in board.text and ticket_id not in board.text

    for action in ("start", "complete"):
        done = requests.post(f"{url}/v1/tickets/{ticket_id}/{action}", headers=officer)
        assert done.status_code == 200, done.text
    holder = {"code": code}
    invited = wait_until(
        lambda: (
            (r := requests.get(f"{url}/v1/tickets/{ticket_id}", params=holder)).ok
            and r.json()["rating"]
        ),
        timeout=30,
        message="the rating invitation",
    )
    assert invited["token"]

    # whoever merely knows the id (no key, the board's key, a wrong code, another agency's
    # officer) gets the 404 of no ticket; the ticket's own officer sees it without the token
    for headers, params in (
        ({}, {}),
        (bearer(a["keys"]["display"]), {}),
        ({}, {"code": "A" * 22}),
        (bearer(b["keys"]["officer"]), {}),
        (bearer(b["keys"]["agency_admin"]), {}),
    ):
        for part in ("", "/payment"):
            answer = requests.get(
                f"{url}/v1/tickets/{ticket_id}{part}", headers=headers, params=params
            )
            assert answer.status_code == 404, (headers, params, part, answer.text)
            assert answer.json()["error"]["code"] == "TICKET_NOT_FOUND"
            assert invited["token"] not in answer.text
    staff = requests.get(f"{url}/v1/tickets/{ticket_id}", headers=officer)
    assert staff.status_code == 200, staff.text
    assert staff.json()["rating"]["token"] is None and staff.json()["access_code"] is None

    # the citizen, with the code, rates
    rated = requests.post(f"{url}/v1/ratings", json={"token": invited["token"], "stars": 5})
    assert rated.status_code == 201, rated.text
