"""The thin path through all four services over HTTP, on SQLite and on PostgreSQL."""

from __future__ import annotations

import pytest
import requests

from tests.support.infra import wait_until
from tests.support.mall import MALL_ADMIN_KEY

pytestmark = pytest.mark.e2e


def read(url: str, ticket: dict, part: str = ""):
    """GET the ticket (or ``part`` of it) as its holder does: with the access code the kiosk
    gave with it."""
    code = {"code": ticket["access_code"]}
    return requests.get(f"{url}/v1/tickets/{ticket['id']}{part}", params=code, timeout=10)


def bearer(key: str) -> dict:
    return {"Authorization": f"Bearer {key}"}


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_ticket_to_payment_to_rating(mall_factory, backend):
    mall = mall_factory(backend)
    url = mall.url
    admin = bearer(MALL_ADMIN_KEY)

    agency = requests.post(
        f"{url}/v1/agencies", headers=admin, json={"code": "IMIGRASI", "name": "Kantor Imigrasi"}
    )
    assert agency.status_code == 201, agency.text
    agency = agency.json()
    agency_admin = bearer(agency["admin_api_key"]["key"])
    service = requests.post(
        f"{url}/v1/agencies/{agency['id']}/services",
        headers=agency_admin,
        json={
            "code": "PASPOR",
            "name": "Paspor",
            "fee_idr": 350000,
            "sla_minutes": 60,
            "prefix": "P",
        },
    ).json()
    counter = requests.post(
        f"{url}/v1/agencies/{agency['id']}/counters",
        headers=agency_admin,
        json={"name": "Loket 2", "service_ids": [service["id"]]},
    ).json()
    officer = requests.post(
        f"{url}/v1/agencies/{agency['id']}/api-keys",
        headers=agency_admin,
        json={"role": "officer"},
    ).json()
    officer_h = bearer(officer["key"])

    ticket = requests.post(
        f"{url}/v1/tickets", json={"service_id": service["id"], "priority": "elderly"}
    )
    assert ticket.status_code == 201, ticket.text
    ticket = ticket.json()
    assert ticket["number"] == "P-001" and ticket["status"] == "waiting"
    request_id = "e2e-journey-1"
    called = requests.post(
        f"{url}/v1/counters/{counter['id']}/call-next",
        headers={**officer_h, "X-Request-ID": request_id},
    )
    assert called.status_code == 200, called.text
    assert called.headers["X-Request-ID"] == request_id
    assert called.json()["id"] == ticket["id"] and called.json()["status"] == "called"
    for action, status in (("start", "serving"), ("complete", "done")):
        answer = requests.post(f"{url}/v1/tickets/{ticket['id']}/{action}", headers=officer_h)
        assert answer.status_code == 200 and answer.json()["status"] == status, answer.text
    again = requests.post(f"{url}/v1/tickets/{ticket['id']}/complete", headers=officer_h)
    assert again.status_code == 409 and again.json()["error"]["code"] == "INVALID_TRANSITION"

    payment = wait_until(  # the provider charge follows the invoice: wait for its QR
        lambda: (
            (r := read(url, ticket, "/payment")).ok
            and r.json()["charge_status"] == "ready"
            and r.json()
        ),
        message="invoice opened and charged",
    )
    assert payment["amount_idr"] == 350000 and payment["status"] == "pending"
    assert payment["qris"]["payload"].startswith("000201010212")
    # the ticket shows it too (event-carried state in the queue service)
    wait_until(
        lambda: read(url, ticket).json()["payment"],
        message="ticket shows payment",
    )

    forged = requests.post(
        f"{url}/v1/webhooks/payments/simulator",
        data=b'{"payment_id": "x"}',
        headers={"X-Simulator-Signature": "0" * 64},
    )
    assert forged.status_code == 401

    simulator = f"{url}/v1/simulator/payments/{payment['id']}/pay"
    assert requests.post(simulator, headers=agency_admin).status_code == 202
    paid = wait_until(
        lambda: (
            (p := requests.get(f"{url}/v1/payments/{payment['id']}").json())["status"] == "paid"
            and p
        ),
        message="payment paid",
    )
    assert paid["receipt"]["amount_idr"] == 350000

    view = wait_until(
        lambda: (t := read(url, ticket).json())["rating"] and t,
        message="rating invitation",
    )
    assert view["payment"]["status"] == "paid"
    token = view["rating"]["token"]
    bad = requests.post(f"{url}/v1/ratings", json={"token": token, "stars": 7})
    assert bad.status_code == 422 and "stars" in bad.json()["error"]["details"]
    rated = requests.post(
        f"{url}/v1/ratings",
        json={"token": token, "stars": 4, "answers": {f"U{i}": 3 for i in range(1, 10)}},
    )
    assert rated.status_code == 201, rated.text
    reused = requests.post(f"{url}/v1/ratings", json={"token": token, "stars": 5})
    assert reused.status_code == 409

    summary = wait_until(  # the summary reads the read model, fed by rating_submitted
        lambda: (
            (s := requests.get(f"{url}/v1/ratings/summary", params={"agency": agency["id"]}))
            .json()
            .get("count")
            and s.json()
        ),
        message="read model folded the rating",
    )
    assert summary["count"] == 1 and summary["average_stars"] == "4.00"
    assert summary["ikm"]["converted"] == "75.00" and summary["ikm"]["grade"] == "C"

    # one journey can be followed across services by the request id
    logs = mall.logs()
    assert request_id in logs
