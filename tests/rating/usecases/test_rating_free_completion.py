"""A completion the queue routed as free (``ticket_completed.free``, issue 20) carries the payment
service's verdict for the version in force (``payment_required: false``): it never reaches the
payment service, so no ``payment_not_required`` follows, and the citizen is invited at once."""

from __future__ import annotations

from mpp_rating import usecases
from tests.rating.interface.conftest import completed_payload, not_required_payload
from tests.rating.usecases.test_rating_usecases_flow import token_of


def test_a_completion_routed_as_free_is_invited_at_once_and_once(desk):
    free = completed_payload("t-free", "ag-1", payment_required=False, payment_terms_version=3)
    desk(usecases.on_ticket_completed, desk.settings, free)
    token = token_of(desk, "t-free")
    assert token
    desk(usecases.on_ticket_completed, desk.settings, free)  # redelivered
    desk(usecases.on_payment_settled, desk.settings, not_required_payload("t-free", "ag-1"))
    assert token_of(desk, "t-free") == token
    assert [e["ticket_id"] for e in desk.events("rating_invited")] == ["t-free"]


def test_a_completion_without_the_verdict_still_waits_for_payment(desk):
    for ticket, required in (("t-plain", None), ("t-paid", True)):
        payload = completed_payload(ticket, "ag-1", payment_required=required)
        desk(usecases.on_ticket_completed, desk.settings, payload)
        assert token_of(desk, ticket) is None
    desk(usecases.on_payment_settled, desk.settings, not_required_payload("t-plain", "ag-1"))
    assert token_of(desk, "t-plain")
    assert token_of(desk, "t-paid") is None
