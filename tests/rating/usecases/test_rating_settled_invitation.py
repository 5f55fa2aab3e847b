"""A visit the payment service decides reaches the rating service through that service's verdict
only (decision 0015): ``payment_succeeded`` or ``payment_not_required`` carries who served the
visit and when, passed on from ``ticket_completed``, and invites on its own, with those facts on
the invitation and in ``rating_invited``. A verdict without them (an older payment service, or an
invoice opened before) still waits for the completion, in either order."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from mpp_rating import usecases
from mpp_rating.adapters.tables import invitations
from tests.rating.interface.conftest import completed_payload, not_required_payload
from tests.rating.usecases.test_rating_usecases_flow import token_of

SERVED_AT = datetime(2026, 12, 6, 3, 15, tzinfo=UTC)


def verdict(ticket_id: str, **completion) -> dict:
    return {**not_required_payload(ticket_id, "ag-1"), **completion}


def invitation(desk, ticket_id: str) -> dict:
    with desk.engine.connect() as conn:
        row = conn.execute(select(invitations).where(invitations.c.ticket_id == ticket_id))
        return dict(row.mappings().one())


def test_a_verdict_carrying_the_completion_invites_on_its_own(desk):
    facts = {"counter_id": "counter-7", "officer_id": "officer-7", "completed_at": SERVED_AT}
    desk(usecases.on_payment_settled, desk.settings, verdict("t-paid", **facts))
    token = token_of(desk, "t-paid")
    assert token
    row = invitation(desk, "t-paid")
    assert (row["counter_id"], row["officer_id"], row["completed_at"]) == (
        "counter-7",
        "officer-7",
        SERVED_AT,
    )
    (invited,) = desk.events("rating_invited")
    assert (invited["counter_id"], invited["officer_id"]) == ("counter-7", "officer-7")
    # the same verdict again, or a completion still in flight from before: one invitation
    desk(usecases.on_payment_settled, desk.settings, verdict("t-paid", **facts))
    later = completed_payload("t-paid", "ag-1", counter_id="counter-7", officer_id="officer-7")
    desk(usecases.on_ticket_completed, desk.settings, later)
    assert token_of(desk, "t-paid") == token
    assert len(desk.events("rating_invited")) == 1


def test_a_verdict_without_the_completion_waits_for_it_in_either_order(desk):
    desk(usecases.on_payment_settled, desk.settings, verdict("t-first"))
    assert token_of(desk, "t-first") is None  # settled, but who served is not known yet
    completed = completed_payload("t-first", "ag-1", completed_at=SERVED_AT - timedelta(hours=1))
    desk(usecases.on_ticket_completed, desk.settings, completed)
    assert token_of(desk, "t-first")
    assert invitation(desk, "t-first")["counter_id"] == "counter-1"

    desk(usecases.on_ticket_completed, desk.settings, completed_payload("t-second", "ag-1"))
    assert token_of(desk, "t-second") is None  # served, not paid yet
    desk(usecases.on_payment_settled, desk.settings, verdict("t-second"))
    assert token_of(desk, "t-second")
