"""A client's retry after its gateway died mid-request gets what the first attempt did: a kiosk
the ticket it issued, not a second one; a citizen the rating they gave, not "token used" (fault
injection found the window: docs/api-guide.md, "Idempotency-Key")."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import requests
import sqlalchemy as sa

from bench.floor import open_floor
from mpp_contracts.mallday import SUPPORTED_TIMEZONES
from tests.queue.usecases.conftest import VALID_NIK
from tests.rating.e2e.test_rating_journey_e2e import register_agency, serve
from tests.support.mall import MALL_ADMIN_KEY

pytestmark = pytest.mark.e2e

MALL_TIMEZONE = "Asia/Jakarta"  # tomorrow's first slot is in the future in any zone


def abandon(mall, key: str) -> None:
    """What a gateway that died after the service did the work, before storing the answer, leaves:
    the key's claim without an answer, old enough to be taken over."""
    gateway_db = sa.create_engine(mall.db_urls["gateway"])
    with gateway_db.begin() as conn:
        changed = conn.execute(
            sa.text(
                "UPDATE idempotency_keys SET status = NULL, response = NULL, created_at = :old"
                " WHERE key = :key"
            ),
            {"old": "2020-01-01 00:00:00+00", "key": key},
        ).rowcount
    gateway_db.dispose()
    assert changed == 1


def retry_after_crash(mall, path: str, body: dict, headers: dict, status: int = 201) -> dict:
    """The client's retry of a request whose gateway died after the service did the work: it
    takes the abandoned key over (no replay) and is answered ``status``; returns the body."""
    abandon(mall, headers["Idempotency-Key"])
    retried = requests.post(f"{mall.url}{path}", json=body, headers=headers, timeout=10)
    assert retried.status_code == status, retried.text
    assert "Idempotent-Replayed" not in retried.headers  # taken over, not replayed
    return retried.json()


def bookable_service(url: str, hours: dict, booking: dict) -> dict:
    """An agency's passport service taking bookings of 30-minute slots, 4 citizens each."""
    agency, agency_admin = register_agency(url, "IMIGRASI", "Kantor Imigrasi")
    service = requests.post(
        f"{url}/v1/agencies/{agency['id']}/services",
        headers=agency_admin,
        json={
            "code": "PASPOR",
            "name": "Paspor",
            "fee_idr": 0,
            "sla_minutes": 60,
            "prefix": "M",
            "opening_hours": [hours],
            "booking": {"slot_minutes": 30, "capacity": 4, **booking},
        },
    )
    assert service.status_code == 201, service.text
    return service.json()


def test_a_take_over_of_an_abandoned_key_returns_the_ticket_already_issued(mall_factory):
    mall = mall_factory("postgres")
    url, admin = mall.url, {"Authorization": f"Bearer {MALL_ADMIN_KEY}"}
    agency = requests.post(
        f"{url}/v1/agencies", headers=admin, json={"code": "DISDUK", "name": "Disdukcapil"}
    ).json()
    service = requests.post(
        f"{url}/v1/agencies/{agency['id']}/services",
        headers={"Authorization": f"Bearer {agency['admin_api_key']['key']}"},
        json={"code": "KTP", "name": "KTP-el", "fee_idr": 0, "sla_minutes": 60, "prefix": "A"},
    ).json()
    kiosk = {"Idempotency-Key": "kiosk-7-0001"}
    body = {"service_id": service["id"]}
    first = requests.post(f"{url}/v1/tickets", json=body, headers=kiosk, timeout=10)
    assert first.status_code == 201, first.text

    retried = retry_after_crash(mall, "/v1/tickets", body, kiosk)
    assert retried["id"] == first.json()["id"]
    assert retried["number"] == "A-001"

    queue_db = sa.create_engine(mall.db_urls["queue"])
    with queue_db.connect() as conn:
        tickets = conn.execute(sa.text("SELECT count(*) FROM tickets")).scalar_one()
    queue_db.dispose()
    assert tickets == 1
    # another kiosk request (another key) is a new citizen: a new ticket
    other = requests.post(
        f"{url}/v1/tickets", json=body, headers={"Idempotency-Key": "kiosk-7-0002"}, timeout=10
    )
    assert other.status_code == 201 and other.json()["number"] == "A-002"


def test_a_take_over_of_an_abandoned_key_returns_the_rating_already_given(mall_factory):
    mall = mall_factory("postgres")
    url = mall.url
    floor = open_floor(url, "DUKCAPIL")
    floor.add_service("KTP", "A")
    token = serve(url, floor.services["KTP"], floor.counters["KTP"][0], floor.officer)
    phone = {"Idempotency-Key": "citizen-app-42"}
    body = {"token": token, "stars": 2, "comment": "antre terlalu lama"}
    first = requests.post(f"{url}/v1/ratings", json=body, headers=phone, timeout=10)
    assert first.status_code == 201, first.text
    assert first.json()["complaint_id"] is not None

    assert retry_after_crash(mall, "/v1/ratings", body, phone) == first.json()

    rating_db = sa.create_engine(mall.db_urls["rating"])
    with rating_db.connect() as conn:
        counts = conn.execute(
            sa.text("SELECT (SELECT count(*) FROM ratings), (SELECT count(*) FROM complaints)")
        ).one()
    rating_db.dispose()
    assert tuple(counts) == (1, 1)
    # another request (another key) with the same token is refused as before
    again = requests.post(
        f"{url}/v1/ratings", json=body, headers={"Idempotency-Key": "citizen-app-43"}, timeout=10
    )
    assert again.status_code == 409 and again.json()["error"]["code"] == "TOKEN_USED"


def test_a_take_over_of_an_abandoned_key_returns_the_booking_already_made(mall_factory):
    mall = mall_factory("postgres", extra_env={"MALL_TIMEZONE": MALL_TIMEZONE})
    url = mall.url
    service = bookable_service(url, {"opens": "08:00", "closes": "15:00"}, {})
    tomorrow = (datetime.now(ZoneInfo(MALL_TIMEZONE)).date() + timedelta(days=1)).isoformat()
    slots = requests.get(
        f"{url}/v1/services/{service['id']}/slots", params={"date": tomorrow}, timeout=10
    ).json()["items"]
    app = {"Idempotency-Key": "citizen-app-7"}
    body = {"service_id": service["id"], "slot_start": slots[0]["start"], "nik": VALID_NIK}
    first = requests.post(f"{url}/v1/bookings", json=body, headers=app, timeout=10)
    assert first.status_code == 201, first.text

    assert retry_after_crash(mall, "/v1/bookings", body, app) == first.json()
    # the booking as it stands: what GET shows, word for word
    shown = requests.get(f"{url}/v1/bookings/{first.json()['id']}", timeout=10)
    assert shown.json() == first.json()

    queue_db = sa.create_engine(mall.db_urls["queue"])
    with queue_db.connect() as conn:
        held = conn.execute(sa.text("SELECT count(*) FROM bookings")).scalar_one()
    queue_db.dispose()
    assert held == 1
    # another request (another key) for the same citizen and day is refused as before
    again = requests.post(
        f"{url}/v1/bookings", json=body, headers={"Idempotency-Key": "citizen-app-8"}, timeout=10
    )
    assert again.status_code == 409 and again.json()["error"]["code"] == "ALREADY_BOOKED"


def test_an_officers_retried_press_calls_no_second_ticket(mall_factory):
    """Issue 16 Found 5: call-next answered 503 after its commit, the officer pressed again, and
    a second ticket was called while the first citizen walked to the counter. With the press's
    Idempotency-Key, the retry that takes the abandoned key over gets the ticket already called
    (and a retried recall recalls once)."""
    mall = mall_factory("postgres")
    url = mall.url
    floor = open_floor(url, "DUKCAPIL")
    floor.add_service("KTP", "A")
    counter = floor.counters["KTP"][0]
    taken = [
        requests.post(f"{url}/v1/tickets", json={"service_id": floor.services["KTP"]}).json()
        for _ in range(2)
    ]
    press = {**floor.officer, "Idempotency-Key": "loket-1-press-1"}
    path = f"/v1/counters/{counter}/call-next"
    called = requests.post(f"{url}{path}", json={}, headers=press, timeout=10)
    assert called.status_code == 200, called.text
    first = next(t for t in taken if t["id"] == called.json()["id"])
    second = next(t for t in taken if t is not first)
    retried = retry_after_crash(mall, path, {}, press, status=200)
    assert retried["id"] == first["id"] and retried["call_count"] == 1

    recall = {**floor.officer, "Idempotency-Key": "loket-1-recall-1"}
    recall_path = f"/v1/tickets/{first['id']}/recall"
    recalled = requests.post(f"{url}{recall_path}", json={}, headers=recall, timeout=10)
    assert recalled.status_code == 200 and recalled.json()["call_count"] == 2, recalled.text
    again = retry_after_crash(mall, recall_path, {}, recall, status=200)
    assert again["call_count"] == 2  # recalled once, not twice

    waiting = requests.get(
        f"{url}/v1/tickets/{second['id']}", params={"code": second["access_code"]}
    )
    assert waiting.json()["status"] == "waiting"  # nobody called the second citizen


def test_a_take_over_of_an_abandoned_key_returns_the_check_in_already_made(mall_factory):
    """A kiosk's check-in answered 503 after its commit (or its gateway died): the retry with the
    same Idempotency-Key gets the ticket the first attempt issued, not 409
    ``INVALID_BOOKING_STATE`` with the booking used up and no ticket shown."""
    # a zone of the mall's where today still has a slot ahead (the last starts 23:00): one of the
    # three is between 01:00 and 22:59 whatever the hour (the queue refuses other zones)
    zone = next(z for z in SUPPORTED_TIMEZONES if 1 <= datetime.now(ZoneInfo(z)).hour <= 22)
    mall = mall_factory("postgres", extra_env={"MALL_TIMEZONE": zone})
    url = mall.url
    service = bookable_service(url, {"opens": "00:00", "closes": "23:30"}, {"early_minutes": 60})
    today = datetime.now(ZoneInfo(zone)).date().isoformat()
    slots = requests.get(
        f"{url}/v1/services/{service['id']}/slots", params={"date": today}, timeout=10
    ).json()["items"]
    now = datetime.now(ZoneInfo(zone))
    ahead = next(s["start"] for s in slots if datetime.fromisoformat(s["start"]) > now)
    body = {"service_id": service["id"], "slot_start": ahead, "nik": VALID_NIK}
    booking = requests.post(f"{url}/v1/bookings", json=body, timeout=10)
    assert booking.status_code == 201, booking.text
    path = f"/v1/bookings/{booking.json()['id']}/check-in"
    kiosk = {"Idempotency-Key": "kiosk-3-check-in-1"}
    first = requests.post(f"{url}{path}", json={}, headers=kiosk, timeout=10)
    assert first.status_code == 201, first.text
    assert first.json()["ticket"]["access_code"]

    assert retry_after_crash(mall, path, {}, kiosk) == first.json()
    queue_db = sa.create_engine(mall.db_urls["queue"])
    with queue_db.connect() as conn:
        issued = conn.execute(sa.text("SELECT count(*) FROM tickets")).scalar_one()
    queue_db.dispose()
    assert issued == 1
    # another request (another key) finds the booking used, as before
    again = requests.post(
        f"{url}{path}", json={}, headers={"Idempotency-Key": "kiosk-3-check-in-2"}, timeout=10
    )
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "INVALID_BOOKING_STATE"
