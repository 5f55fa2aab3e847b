"""A gateway of this release in front of a payment service of the release before (a rolling
upgrade: docs/decisions/0022-invoice-read-in-one-rpc.md). That payment service has no
``read_ticket_payment``; the gateway reads the invoice as it did before, the queue deciding
who may see it, so no citizen loses their invoice and no stranger gains it meanwhile."""

from __future__ import annotations

import pytest

from mpp_chassis.messaging import rpc
from mpp_contracts.errors import EXPECTED_ERRORS, NotFound

TICKET = "00000000-0000-4000-8000-000000000001"
CODE = "Q0dFLXRpY2tldC1jb2RlMQ"
INVOICE = {"id": "payment-1", "ticket_id": TICKET, "amount_idr": 15000, "status": "pending"}


class QueueStandIn:
    """The queue's ``get_ticket``: the ticket for its code's holder, else 404."""

    name = "queue"

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def get_ticket(self, ticket_id: str, code: str | None = None, actor: dict | None = None):
        if ticket_id != TICKET or code != CODE:
            raise NotFound("TICKET_NOT_FOUND", "no such ticket")
        return {"id": TICKET}


class OlderPaymentStandIn:
    """A payment service before ``read_ticket_payment``: the unchecked read alone."""

    name = "payment"

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def get_ticket_payment(self, ticket_id: str) -> dict:
        return INVOICE


@pytest.fixture
def older_mall(container_factory, gateway_config, gateway):
    for stand_in in (QueueStandIn, OlderPaymentStandIn):
        container_factory(stand_in, gateway_config).start()
    return gateway


def test_an_older_payment_service_still_serves_the_code_holder_and_no_stranger(older_mall):
    path = f"/v1/tickets/{TICKET}/payment"
    holder = older_mall.request("GET", path, params={"code": CODE})
    assert holder.status_code == 200, holder.text
    assert holder.json() == INVOICE
    for params in ({}, {"code": "A" * 22}):
        stranger = older_mall.request("GET", path, params=params)
        assert stranger.status_code == 404, stranger.text
        assert stranger.json()["error"]["code"] == "TICKET_NOT_FOUND"
