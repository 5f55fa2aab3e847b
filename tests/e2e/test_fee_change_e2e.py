"""A fee changes while tickets wait (issue 19): the payment service alone decides whether a
completed ticket needs paying, with the fee in force at completion, and the rating service
invites from its verdict only.

Before, the rating service decided from the fee the ticket was issued with: a service that
became paid while a citizen waited had them invited before paying (and an invoice open beside
the invitation), and one that became free left its citizen never invited (it waited for a
payment that would never come)."""

from __future__ import annotations

import pytest
import requests
import sqlalchemy as sa

from bench.floor import bearer, open_floor
from tests.support.infra import wait_until

pytestmark = pytest.mark.e2e


def scalar(url: str, sql: str, **params):
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return conn.execute(sa.text(sql), params).scalar()
    finally:
        engine.dispose()


def test_a_fee_changed_while_tickets_wait_is_decided_by_the_payment_service(mall_factory):
    mall = mall_factory("sqlite")
    url, payment_db, rating_db = mall.url, mall.db_urls["payment"], mall.db_urls["rating"]
    floor = open_floor(url)
    admin = bearer(floor.admin_key)
    became_paid = floor.add_service("NAIK", "N", fee_idr=0)
    became_free = floor.add_service("TURUN", "T", fee_idr=20000)
    tickets = {
        service: requests.post(f"{url}/v1/tickets", json={"service_id": service}).json()
        for service in (became_paid, became_free)
    }
    assert tickets[became_paid]["fee_idr"] == 0 and tickets[became_free]["fee_idr"] == 20000

    for service, fee in ((became_paid, 15000), (became_free, 0)):
        changed = requests.patch(
            f"{url}/v1/agencies/{floor.agency_id}/services/{service}",
            headers=admin,
            json={"fee_idr": fee},
        )
        assert changed.status_code == 200, changed.text
        wait_until(  # the payment service's copy of the catalogue has the new fee
            lambda s=service, f=fee: (
                scalar(payment_db, "SELECT fee_idr FROM catalogue_services WHERE id = :s", s=s) == f
            ),
            message="fee copied",
        )

    for code in ("NAIK", "TURUN"):
        (counter,) = floor.counters[code]
        called = requests.post(f"{url}/v1/counters/{counter}/call-next", headers=floor.officer)
        assert called.status_code == 200, called.text
        for action in ("start", "complete"):
            answer = requests.post(
                f"{url}/v1/tickets/{called.json()['id']}/{action}", headers=floor.officer
            )
            assert answer.status_code == 200, answer.text

    def view(service: str) -> dict:
        ticket = tickets[service]
        code = {"code": ticket["access_code"]}
        return requests.get(f"{url}/v1/tickets/{ticket['id']}", params=code).json()

    # free now: no invoice, and the invitation comes without any payment
    free = wait_until(lambda: view(became_free)["rating"], message="invited without paying")
    assert free["token"]
    assert (
        scalar(
            payment_db,
            "SELECT count(*) FROM payments WHERE ticket_id = :t",
            t=tickets[became_free]["id"],
        )
        == 0
    )

    # paid now: the invoice is for the fee at completion, and no invitation before it is paid
    paid_ticket = tickets[became_paid]["id"]
    code = {"code": tickets[became_paid]["access_code"]}
    invoice = wait_until(
        lambda: (
            (r := requests.get(f"{url}/v1/tickets/{paid_ticket}/payment", params=code)).ok
            and r.json()
        ),
        message="invoice opened",
    )
    assert invoice["amount_idr"] == 15000
    # the rating service hears of a visit the payment service decides from its verdict only,
    # which carries who served it (decision 0015): nothing of this one there before it is paid
    assert view(became_paid)["rating"] is None
    assert (
        scalar(rating_db, "SELECT count(*) FROM invitations WHERE ticket_id = :t", t=paid_ticket)
        == 0
    )

    paid = requests.post(f"{url}/v1/simulator/payments/{invoice['id']}/pay", headers=admin)
    assert paid.status_code == 202, paid.text
    invited = wait_until(lambda: view(became_paid)["rating"], message="invited once paid")
    assert invited["token"]
    assert scalar(
        rating_db,
        "SELECT count(*) FROM invitations WHERE ticket_id = :t AND completed AND counter_id = :c",
        t=paid_ticket,
        c=floor.counters["NAIK"][0],
    )
