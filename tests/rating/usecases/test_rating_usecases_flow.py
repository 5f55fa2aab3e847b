"""A rating's life through the rating use cases on a real database (SQLite and PostgreSQL): the
invitation waits for both facts (ticket completed, payment settled or not required), the token
rates once, a low score opens a complaint, and the read model folds the rating into the
published summary. No nameko, no broker: what the entry points call, in their order."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from mpp_contracts.errors import Conflict, NotFound
from mpp_rating import usecases
from mpp_rating.adapters.tables import invitations
from tests.rating.interface.conftest import completed_payload, not_required_payload


def token_of(desk, ticket_id: str) -> str | None:
    with desk.engine.connect() as conn:
        return conn.execute(
            select(invitations.c.token).where(invitations.c.ticket_id == ticket_id)
        ).scalar()


def invite(desk, ticket_id: str, agency_id: str = "ag-1") -> str:
    desk(usecases.on_ticket_completed, desk.settings, completed_payload(ticket_id, agency_id))
    desk(usecases.on_payment_settled, desk.settings, not_required_payload(ticket_id, agency_id))
    return token_of(desk, ticket_id)


def test_an_invitation_needs_both_the_completed_ticket_and_the_payment_verdict(desk):
    desk(usecases.on_ticket_completed, desk.settings, completed_payload("t-1", "ag-1"))
    assert token_of(desk, "t-1") is None  # the payment service has not decided yet
    assert desk.events("rating_invited") == []

    desk(usecases.on_payment_settled, desk.settings, not_required_payload("t-1", "ag-1"))
    desk(usecases.on_payment_settled, desk.settings, not_required_payload("t-1", "ag-1"))

    assert token_of(desk, "t-1")
    assert [e["ticket_id"] for e in desk.events("rating_invited")] == ["t-1"]  # once


def test_a_token_rates_once_and_the_rating_reaches_the_summary(desk):
    token = invite(desk, "t-1")
    answers = {f"U{i}": 4 for i in range(1, 10)}

    rated = desk(
        usecases.submit_rating, desk.settings, {"token": token, "stars": 5, "answers": answers}
    )
    with pytest.raises(Conflict) as again:
        desk(usecases.submit_rating, desk.settings, {"token": token, "stars": 1, "answers": {}})
    with pytest.raises(NotFound):
        desk(usecases.submit_rating, desk.settings, {"token": "x" * 32, "stars": 5})

    assert rated["ticket_id"] == "t-1" and rated["stars"] == 5
    assert rated["complaint_id"] is None
    assert again.value.code == "TOKEN_USED"
    submitted = desk.delivered("rating_submitted")
    assert [e["rating_id"] for e in submitted] == [rated["id"]]

    # the submission folded it into the read model itself
    summary = desk(usecases.summary, desk.settings, {"agency": "ag-1", "period": "day"})

    assert summary["count"] == 1
    assert summary["average_stars"] == "5.00"


def test_a_low_score_opens_a_complaint_the_agency_can_list(desk):
    token = invite(desk, "t-2")

    rated = desk(
        usecases.submit_rating,
        desk.settings,
        {"token": token, "stars": 1, "answers": {}, "comment": "waited two hours"},
    )
    admin = {"role": "agency_admin", "agency_id": "ag-1", "key_id": "k-1"}
    listed = desk(usecases.list_complaints, "ag-1", {"status": None}, admin)

    assert rated["complaint_id"]
    assert [c["id"] for c in listed["items"]] == [rated["complaint_id"]]
