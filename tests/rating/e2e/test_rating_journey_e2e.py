"""The citizen's verdict through the gateway: two served citizens rate, the public reads the
summary and the leaderboard, and the agency walks the low rating's complaint to resolution."""

from __future__ import annotations

import pytest
import requests

from tests.support.infra import wait_until
from tests.support.mall import MALL_ADMIN_KEY

pytestmark = pytest.mark.e2e


def bearer(key: str) -> dict:
    return {"Authorization": f"Bearer {key}"}


def register_agency(url: str, code: str, name: str) -> tuple[dict, dict]:
    agency = requests.post(
        f"{url}/v1/agencies", headers=bearer(MALL_ADMIN_KEY), json={"code": code, "name": name}
    )
    assert agency.status_code == 201, agency.text
    agency = agency.json()
    return agency, bearer(agency["admin_api_key"]["key"])


def read(url: str, ticket: dict):
    """The ticket as its holder reads it: with the access code the kiosk gave."""
    code = {"code": ticket["access_code"]}
    return requests.get(f"{url}/v1/tickets/{ticket['id']}", params=code, timeout=10)


def serve(url: str, service_id: str, counter_id: str, officer: dict) -> str:
    """Take a ticket, serve and complete it; return the rating token the ticket then shows."""
    ticket = requests.post(f"{url}/v1/tickets", json={"service_id": service_id}).json()
    called = requests.post(f"{url}/v1/counters/{counter_id}/call-next", headers=officer)
    assert called.status_code == 200 and called.json()["id"] == ticket["id"], called.text
    for action in ("start", "complete"):
        answer = requests.post(f"{url}/v1/tickets/{ticket['id']}/{action}", headers=officer)
        assert answer.status_code == 200, answer.text
    view = wait_until(
        lambda: (t := read(url, ticket).json())["rating"] and t,
        message="the ticket shows its rating link",
    )
    return view["rating"]["token"]


def test_rate_read_summary_and_leaderboard_and_resolve_a_complaint(mall_factory):
    url = mall_factory("postgres").url
    agency, agency_admin = register_agency(url, "DUKCAPIL", "Dinas Dukcapil")
    _, other_admin = register_agency(url, "SAMSAT", "Samsat")
    service = requests.post(
        f"{url}/v1/agencies/{agency['id']}/services",
        headers=agency_admin,
        json={"code": "KTP", "name": "KTP-el", "fee_idr": 0, "sla_minutes": 30, "prefix": "A"},
    ).json()
    counter = requests.post(
        f"{url}/v1/agencies/{agency['id']}/counters",
        headers=agency_admin,
        json={"name": "Loket 1", "service_ids": [service["id"]]},
    ).json()
    officer = bearer(
        requests.post(
            f"{url}/v1/agencies/{agency['id']}/api-keys",
            headers=agency_admin,
            json={"role": "officer"},
        ).json()["key"]
    )
    happy_token = serve(url, service["id"], counter["id"], officer)
    unhappy_token = serve(url, service["id"], counter["id"], officer)

    comment = "<b>Cepat</b> & ramah"
    happy = requests.post(
        f"{url}/v1/ratings",
        json={
            "token": happy_token,
            "stars": 5,
            "answers": {f"U{i}": 4 for i in range(1, 10)},
            "comment": comment,
        },
    )
    assert happy.status_code == 201, happy.text
    assert happy.json()["comment"] == comment and happy.json()["complaint_id"] is None
    out_of_range = requests.post(
        f"{url}/v1/ratings", json={"token": unhappy_token, "stars": 3, "answers": {"U1": 0}}
    )
    assert out_of_range.status_code == 422 and "answers" in out_of_range.json()["error"]["details"]
    unhappy = requests.post(
        f"{url}/v1/ratings",
        json={
            "token": unhappy_token,
            "stars": 1,
            "answers": {f"U{i}": 2 for i in range(1, 10)},
            "comment": "Antre lama sekali",
        },
    )
    assert unhappy.status_code == 201, unhappy.text
    complaint_id = unhappy.json()["complaint_id"]
    assert complaint_id

    summary = wait_until(
        lambda: (
            (s := requests.get(f"{url}/v1/ratings/summary", params={"agency": agency["id"]}))
            .json()
            .get("count")
            == 2
            and s
        ),
        message="read model folded both ratings",
    )
    body = summary.json()
    assert body["average_stars"] == "3.00" and body["csat"] == "0.5000"
    # every element NRR = (4 + 2) / 2 = 3 → IKM 3.0000, converted 75.00 → C (Kurang Baik)
    assert body["ikm"]["raw"] == "3.0000" and body["ikm"]["converted"] == "75.00"
    assert body["ikm"]["grade"] == "C" and body["representative"] is True
    assert "Antre" not in summary.text and "Cepat" not in summary.text  # nothing unpublished
    assert requests.get(f"{url}/v1/ratings/summary", params={"period": "year"}).status_code == 422

    board = requests.get(f"{url}/v1/leaderboard", params={"period": "month"})
    assert board.status_code == 200, board.text
    top = board.json()["items"][0]
    assert (top["rank"], top["agency_name"], top["converted_ikm"]) == (1, "Dinas Dukcapil", "75.00")

    complaints_path = f"{url}/v1/agencies/{agency['id']}/complaints"
    assert requests.get(complaints_path, headers=other_admin).status_code == 403
    assert requests.get(complaints_path).status_code == 401
    listed = requests.get(complaints_path, headers=agency_admin)
    assert listed.status_code == 200, listed.text
    (complaint,) = listed.json()["items"]
    assert complaint["id"] == complaint_id and complaint["status"] == "open"
    assert complaint["comment"] == "Antre lama sekali" and complaint["reason"] == "low_stars"

    respond = f"{url}/v1/complaints/{complaint_id}/responses"
    assert requests.post(respond, headers=other_admin, json={"message": "x"}).status_code == 403
    answered = requests.post(respond, headers=agency_admin, json={"message": "Mohon maaf"})
    assert answered.status_code == 201 and answered.json()["status"] == "responded", answered.text
    resolved = requests.post(
        respond, headers=agency_admin, json={"message": "Loket ditambah", "resolve": True}
    )
    assert resolved.status_code == 201 and resolved.json()["status"] == "resolved", resolved.text
    again = requests.post(respond, headers=agency_admin, json={"message": "lagi"})
    assert again.status_code == 409
    done = requests.get(complaints_path, headers=agency_admin, params={"status": "resolved"})
    assert [c["id"] for c in done.json()["items"]] == [complaint_id]

    published = requests.post(
        f"{url}/v1/ratings/{happy.json()['id']}/publish", headers=agency_admin
    )
    assert published.status_code == 200, published.text
    shown = requests.get(f"{url}/v1/ratings/summary", params={"agency": agency["id"]}).json()
    assert [c["comment"] for c in shown["published_comments"]] == [comment]
