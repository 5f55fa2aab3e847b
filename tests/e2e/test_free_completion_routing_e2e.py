"""A free service's completion skips the payment service (issue 20, item 3): the payment service
published its verdict for the service's version (``payment_terms_set``), the queue routes the
completion as ``ticket_completed.free``, and the rating service invites from it, while the
payment service's ``ticket_completed`` queue never receives it. A paid service's completion
still reaches the payment service and is invoiced; once paid, the rating service invites it from
``payment_succeeded`` alone, which carries who served and when: the paid completion never
reaches the rating service's queue (decision 0015).

Before, every completion went through the payment service (``payment_not_required`` for a free
one): a relay, a consumer and a second relay on the way to the rating token."""

from __future__ import annotations

import pytest
import requests

from bench.floor import bearer, open_floor
from tests.e2e.test_fee_change_e2e import scalar
from tests.support.infra import wait_until

pytestmark = pytest.mark.e2e


def serve(url: str, floor, code: str) -> None:
    (counter,) = floor.counters[code]
    called = requests.post(f"{url}/v1/counters/{counter}/call-next", headers=floor.officer)
    assert called.status_code == 200, called.text
    for action in ("start", "complete"):
        answer = requests.post(
            f"{url}/v1/tickets/{called.json()['id']}/{action}", headers=floor.officer
        )
        assert answer.status_code == 200, answer.text


def test_a_free_completion_is_invited_without_the_payment_service(mall_factory):
    mall = mall_factory("sqlite")
    url, queue_db, payment_db = mall.url, mall.db_urls["queue"], mall.db_urls["payment"]
    rating_db = mall.db_urls["rating"]
    floor = open_floor(url)
    services = {
        "GRATIS": floor.add_service("GRATIS", "G"),
        "BAYAR": floor.add_service("BAYAR", "B", fee_idr=5000),
    }
    for service, required in ((services["GRATIS"], False), (services["BAYAR"], True)):
        wait_until(  # the queue holds the payment service's terms for version 1
            lambda s=service, r=required: (
                scalar(
                    queue_db,
                    "SELECT payment_terms_version FROM services WHERE id = :s AND "
                    "payment_required = :r",
                    s=s,
                    r=r,
                )
                == 1
            ),
            message="payment's terms at the queue",
        )
    tickets = {
        code: requests.post(f"{url}/v1/tickets", json={"service_id": service}).json()
        for code, service in services.items()
    }
    for service_code in services:
        serve(url, floor, service_code)

    def view(service_code: str) -> dict:
        ticket = tickets[service_code]
        params = {"code": ticket["access_code"]}
        return requests.get(f"{url}/v1/tickets/{ticket['id']}", params=params).json()

    invited = wait_until(lambda: view("GRATIS")["rating"], message="free ticket invited")
    assert invited["token"]

    paid = tickets["BAYAR"]
    code = {"code": paid["access_code"]}
    invoice = wait_until(
        lambda: (
            (r := requests.get(f"{url}/v1/tickets/{paid['id']}/payment", params=code)).ok
            and r.json()
        ),
        message="paid ticket invoiced",
    )
    assert invoice["amount_idr"] == 5000
    assert view("BAYAR")["rating"] is None  # invited only once paid, as before

    # the payment service handled exactly one completion, the paid one: the free one never
    # reached its queue (it claims every event it handles, in the handler's transaction)
    claims = "SELECT count(*) FROM processed_events WHERE handler = 'handle_ticket_completed'"
    assert scalar(payment_db, claims) == 1
    free_id = tickets["GRATIS"]["id"]
    assert (
        scalar(payment_db, "SELECT count(*) FROM outbox WHERE body LIKE :t", t=f"%{free_id}%") == 0
    )

    # paid: invited from the payment service's verdict alone, with the completion's facts
    simulated = requests.post(
        f"{url}/v1/simulator/payments/{invoice['id']}/pay", headers=bearer(floor.admin_key)
    )
    assert simulated.status_code == 202, simulated.text
    assert wait_until(lambda: view("BAYAR")["rating"], message="paid ticket invited")["token"]
    served = scalar(
        queue_db,
        "SELECT counter_id || ' ' || officer_id FROM tickets WHERE id = :t",
        t=paid["id"],
    )
    assert served is not None  # both known: a counter and an officer served it
    invitation = "SELECT counter_id || ' ' || officer_id FROM invitations WHERE ticket_id = :t"
    assert scalar(rating_db, invitation, t=paid["id"]) == served
    assert scalar(
        rating_db,
        "SELECT count(*) FROM invitations WHERE ticket_id = :t AND completed_at IS NOT NULL",
        t=paid["id"],
    )
    # the rating service handled one completion, the free one: the paid one never reached it
    assert scalar(rating_db, claims) == 1
