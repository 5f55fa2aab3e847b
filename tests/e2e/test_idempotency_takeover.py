"""A kiosk's retry after its gateway died mid-request gets the ticket the first attempt issued,
not a second one (fault injection found the window: docs/api-guide.md, "Idempotency-Key")."""

from __future__ import annotations

import pytest
import requests
import sqlalchemy as sa

from tests.support.mall import MALL_ADMIN_KEY

pytestmark = pytest.mark.e2e


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

    # the gateway died after the queue issued the ticket and before it stored the answer
    gateway_db = sa.create_engine(mall.db_urls["gateway"])
    with gateway_db.begin() as conn:
        changed = conn.execute(
            sa.text(
                "UPDATE idempotency_keys SET status = NULL, response = NULL, created_at = :old"
                " WHERE key = :key"
            ),
            {"old": "2020-01-01 00:00:00+00", "key": kiosk["Idempotency-Key"]},
        ).rowcount
    gateway_db.dispose()
    assert changed == 1

    retried = requests.post(f"{url}/v1/tickets", json=body, headers=kiosk, timeout=10)
    assert retried.status_code == 201, retried.text
    assert "Idempotent-Replayed" not in retried.headers  # taken over, not replayed
    assert retried.json()["id"] == first.json()["id"]
    assert retried.json()["number"] == "A-001"

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
