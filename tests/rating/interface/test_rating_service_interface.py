"""The rating service through its real entry points and database: invitations bound to the
ticket's agency/service/counter/officer, one-time submission and the read model it folds into,
public summaries, comment publication and the complaint lifecycle."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select, update

from mpp_contracts.envelope import read_envelope
from mpp_contracts.errors import Conflict, Forbidden, NotFound, ValidationFailed
from mpp_rating.adapters.tables import complaints, invitations, metadata, ratings
from tests.rating.interface.conftest import envelope

pytestmark = pytest.mark.integration

outbox = metadata.tables["outbox"]
ALL_THREES = {f"U{i}": 3 for i in range(1, 10)}
AGENCY_ADMIN = {"role": "agency_admin", "agency_id": "ag-1", "key_id": "k-1"}


def outbox_events(rating, event_type: str) -> list[dict]:
    with rating.db.connect() as conn:
        bodies = conn.execute(
            select(outbox.c.body).where(outbox.c.event_type == event_type).order_by(outbox.c.seq)
        ).scalars()
        return [read_envelope(json.loads(body)) for body in bodies]


def test_rate_once_and_read_the_summary_from_the_read_model(rating):
    rating.call(
        "handle_agency_registered",
        envelope(
            "agency_registered", {"agency_id": "ag-1", "code": "DUKCAPIL", "name": "Dukcapil"}
        ),
    )
    token = rating.complete("t-1", "ag-1", counter_id="c-7", officer_id="o-9")
    invited = outbox_events(rating, "rating_invited")[0]["payload"]
    assert (invited["counter_id"], invited["officer_id"], invited["token"]) == ("c-7", "o-9", token)

    with pytest.raises(ValidationFailed) as bad:
        rating.call("submit_rating", {"token": token, "stars": 6, "answers": {"U1": 5}})
    assert set(bad.value.details) == {"stars", "answers"}
    with pytest.raises(NotFound):
        rating.call("submit_rating", {"token": "x" * 43, "stars": 5})

    comment = '<script>alert("x")</script> Petugas ramah  '
    answers = {**ALL_THREES, "U7": 4}
    stored = rating.call(
        "submit_rating", {"token": token, "stars": 5, "answers": answers, "comment": comment}
    )
    assert stored["comment"] == comment and stored["complaint_id"] is None
    with pytest.raises(Conflict) as used:
        rating.call("submit_rating", {"token": token, "stars": 4})
    assert used.value.code == "TOKEN_USED"
    with rating.db.connect() as conn:
        row = conn.execute(select(ratings)).mappings().one()
    assert row["comment"] == comment  # stored exactly as typed
    assert (row["counter_id"], row["officer_id"]) == ("c-7", "o-9")

    # the submission folded the rating into the read model in its own transaction (0030)
    submitted = outbox_events(rating, "rating_submitted")[0]
    assert "comment" not in submitted["payload"] and submitted["payload"]["has_comment"]
    summary = rating.call("summary", {"agency": "ag-1"})
    assert summary["count"] == 1 and summary["average_stars"] == "5.00"
    assert summary["csat"] == "1.0000"
    # (8 × 3 + 4) / 9 × 25 = 77.78 → B
    assert summary["ikm"]["converted"] == "77.78" and summary["ikm"]["grade"] == "B"
    assert summary["ikm"]["weight"] == "exact" and summary["ikm"]["weight_value"] == "1/9"
    # and the regulation's printed 0.111 alongside, labelled: 28 × 0.111 × 25 = 77.70 (ADR 0004)
    assert summary["ikm"]["other_weight"] == {
        "weight": "regulation",
        "weight_value": "111/1000",
        "raw": "3.1080",
        "converted": "77.70",
        "grade": "B",
        "grade_label": "Baik",
    }
    assert summary["served"] == 1 and summary["representative"] is True
    assert summary["published_comments"] == []  # nothing public until the agency publishes
    officer = rating.call("summary", {"officer": "o-9", "period": "month"})
    assert officer["dimension"] == "officer" and officer["count"] == 1
    assert rating.call("summary", {"agency": "ag-2"})["count"] == 0

    with pytest.raises(Forbidden):
        rating.call("publish_comment", stored["id"], {**AGENCY_ADMIN, "agency_id": "ag-2"})
    rating.call("publish_comment", stored["id"], AGENCY_ADMIN)
    public = rating.call("summary", {"agency": "ag-1"})
    assert public["published_comments"][0]["comment"] == comment
    assert set(public["published_comments"][0]) == {"stars", "comment", "date"}

    board = rating.call("leaderboard", {"period": "month"})
    assert board["items"][0]["agency_name"] == "Dukcapil" and board["items"][0]["rank"] == 1
    # each entry carries its nine elements, as the agency's own summary publishes them
    assert [e["code"] for e in board["items"][0]["elements"]] == [f"U{i}" for i in range(1, 10)]
    assert board["items"][0]["elements"] == summary["ikm"]["elements"]


def test_low_rating_complaint_is_answered_resolved_or_escalated(rating):
    low = rating.call(
        "submit_rating", {"token": rating.complete("t-1", "ag-1"), "stars": 2, "comment": "lama"}
    )
    flagged = rating.call(
        "submit_rating",
        {"token": rating.complete("t-2", "ag-1"), "stars": 4, "flag_complaint": True},
    )
    calm = rating.call("submit_rating", {"token": rating.complete("t-3", "ag-1"), "stars": 3})
    assert low["complaint_id"] and flagged["complaint_id"] and calm["complaint_id"] is None
    opened = [e["payload"] for e in outbox_events(rating, "complaint_opened")]
    assert sorted(p["reason"] for p in opened) == ["flagged", "low_stars"]

    with pytest.raises(Forbidden):
        rating.call("list_complaints", "ag-1", {}, {**AGENCY_ADMIN, "agency_id": "ag-2"})
    first_page = rating.call("list_complaints", "ag-1", {"limit": 1}, AGENCY_ADMIN)
    assert len(first_page["items"]) == 1 and first_page["next_cursor"]
    second_page = rating.call(
        "list_complaints", "ag-1", {"limit": 1, "cursor": first_page["next_cursor"]}, AGENCY_ADMIN
    )
    assert second_page["next_cursor"] is None
    ids = {first_page["items"][0]["id"], second_page["items"][0]["id"]}
    assert ids == {low["complaint_id"], flagged["complaint_id"]}

    complaint = low["complaint_id"]
    with pytest.raises(Forbidden):
        rating.call(
            "respond_to_complaint",
            complaint,
            {"message": "x"},
            {**AGENCY_ADMIN, "agency_id": "ag-2"},
        )
    answered = rating.call(
        "respond_to_complaint", complaint, {"message": "Mohon maaf"}, AGENCY_ADMIN
    )
    assert answered["status"] == "responded" and answered["responses"][0]["message"]
    resolved = rating.call(
        "respond_to_complaint", complaint, {"message": "Sudah", "resolve": True}, AGENCY_ADMIN
    )
    assert resolved["status"] == "resolved" and len(resolved["responses"]) == 2
    with pytest.raises(Conflict) as closed:
        rating.call("respond_to_complaint", complaint, {"message": "lagi"}, AGENCY_ADMIN)
    assert closed.value.code == "INVALID_TRANSITION"
    kinds = [e["payload"]["status"] for e in outbox_events(rating, "complaint_resolved")] + [
        e["payload"]["status"] for e in outbox_events(rating, "complaint_responded")
    ]
    assert kinds == ["resolved", "responded", "responded"]

    # the timer escalates the flagged complaint once its first-response deadline has passed
    rating.call("escalate_overdue_complaints")
    assert outbox_events(rating, "complaint_escalated") == []  # not yet due
    past = datetime.now(UTC) - timedelta(days=3, minutes=1)
    with rating.db.begin() as conn:
        conn.execute(
            update(complaints)
            .where(complaints.c.id == flagged["complaint_id"])
            .values(opened_at=past, first_response_due=past + timedelta(days=3))
        )
    rating.call("escalate_overdue_complaints")
    rating.call("escalate_overdue_complaints")  # firing twice escalates once
    escalated = [e["payload"] for e in outbox_events(rating, "complaint_escalated")]
    assert len(escalated) == 1
    assert escalated[0]["complaint_id"] == flagged["complaint_id"]
    assert escalated[0]["escalated_for"] == "first_response"
    with rating.db.connect() as conn:
        statuses = dict(conn.execute(select(complaints.c.id, complaints.c.status)).all())
    assert statuses == {complaint: "resolved", flagged["complaint_id"]: "escalated"}


def test_a_complaint_classified_as_a_dispute_gets_fourteen_days(rating):
    low = rating.call("submit_rating", {"token": rating.complete("t-9", "ag-1"), "stars": 1})
    complaint = low["complaint_id"]
    answered = rating.call(
        "respond_to_complaint",
        complaint,
        {"message": "Perlu pemeriksaan lapangan", "dispute": True},
        AGENCY_ADMIN,
    )
    assert answered["status"] == "responded" and answered["disputed"] is True
    opened = datetime.fromisoformat(answered["opened_at"])
    assert datetime.fromisoformat(answered["resolution_due"]) == opened + timedelta(days=14)
    with pytest.raises(Conflict):  # a dispute is declared once
        rating.call(
            "respond_to_complaint", complaint, {"message": "x", "dispute": True}, AGENCY_ADMIN
        )

    def age(days: int) -> None:
        past = datetime.now(UTC) - timedelta(days=days)
        with rating.db.begin() as conn:
            conn.execute(
                update(complaints)
                .where(complaints.c.id == complaint)
                .values(
                    opened_at=past,
                    first_response_due=past + timedelta(days=3),
                    resolution_due=past + timedelta(days=14),
                )
            )

    age(6)  # past the ordinary 5 days, within the dispute's 14
    rating.call("escalate_overdue_complaints")
    assert outbox_events(rating, "complaint_escalated") == []
    age(15)
    rating.call("escalate_overdue_complaints")
    escalated = [e["payload"] for e in outbox_events(rating, "complaint_escalated")]
    assert [e["escalated_for"] for e in escalated] == ["dispute"]


def test_paid_service_invites_only_after_payment_whatever_the_order(rating):
    rating.call(
        "handle_ticket_completed",
        [envelope("ticket_completed", _completed("t-paid", fee_idr=50000))],
    )
    with rating.db.connect() as conn:
        assert conn.execute(select(invitations.c.token)).scalar_one() is None
    paid = {
        "payment_id": "p-1",
        "ticket_id": "t-paid",
        "agency_id": "ag-1",
        "service_id": "svc-ag-1",
        "amount_idr": 50000,
        "status": "paid",
        "provider": "simulator",
    }
    rating.call("handle_payment_succeeded", [envelope("payment_succeeded", paid, "payment")])
    with rating.db.connect() as conn:
        assert conn.execute(select(invitations.c.token)).scalar_one()
        assert conn.execute(select(func.count()).select_from(invitations)).scalar_one() == 1


@pytest.mark.parametrize("verdict_first", [False, True])
def test_a_free_ticket_is_invited_on_the_payment_services_verdict_not_its_fee(
    rating, verdict_first
):
    """Issue 19: whether a ticket needs paying is the payment service's fact. A completion whose
    event carries fee 0 (the fee when the ticket was taken) no longer invites by itself: the fee
    may have changed since, and the payment service may be opening an invoice. The invitation
    comes with payment_not_required, before or after the completion."""
    from tests.rating.interface.conftest import not_required_payload

    completed = ("handle_ticket_completed", [envelope("ticket_completed", _completed("t-free"))])
    verdict = (
        "handle_payment_not_required",
        [envelope("payment_not_required", not_required_payload("t-free", "ag-1"), "payment")],
    )
    first, second = (verdict, completed) if verdict_first else (completed, verdict)

    def token():
        with rating.db.connect() as conn:
            return conn.execute(select(invitations.c.token)).scalar_one()

    rating.call(*first)
    assert token() is None
    rating.call(*second)
    assert token()
    rating.call(*verdict)  # a redelivered verdict changes nothing
    assert len(outbox_events(rating, "rating_invited")) == 1


def _completed(ticket_id: str, **overrides) -> dict:
    from tests.rating.interface.conftest import completed_payload

    return completed_payload(ticket_id, "ag-1", **overrides)


def test_a_keyed_submission_is_answered_with_its_rating_however_often_it_arrives(rating):
    """A retry that took over the Idempotency-Key of a gateway that died mid-request carries the
    same request key: it gets the rating (and complaint) the first attempt stored, not 409."""
    token = rating.complete("t-1", "ag-1")
    body = {"token": token, "stars": 2, "comment": "antre lama"}
    first = rating.call("submit_rating", body, "k" * 64)
    assert first["complaint_id"] is not None
    assert rating.call("submit_rating", body, "k" * 64) == first
    # another request (another key, or none) with the used token is refused as before
    for other in ("j" * 64, None):
        with pytest.raises(Conflict) as used:
            rating.call("submit_rating", body, other)
        assert used.value.code == "TOKEN_USED"
    with rating.db.connect() as conn:
        assert conn.execute(select(func.count()).select_from(ratings)).scalar_one() == 1
    assert len(outbox_events(rating, "rating_submitted")) == 1
    assert len(outbox_events(rating, "complaint_opened")) == 1
    for bad in ("", "k" * 65, 7):
        with pytest.raises(ValidationFailed):
            rating.call("submit_rating", {"token": rating.complete("t-2", "ag-1"), "stars": 5}, bad)


def test_a_batch_of_facts_invites_each_ticket_once_in_one_transaction(rating):
    """Issue 20: the handlers take the deliveries at hand as one list and apply them in one
    transaction; the use case runs once per event inside it. Completions and verdicts of three
    tickets, one completion delivered twice in the batch and again in a later one, give three
    invitations, each with its own token, and the later batch changes nothing."""
    from tests.rating.interface.conftest import not_required_payload

    tickets = ("t-b1", "t-b2", "t-b3")
    completions = [envelope("ticket_completed", _completed(t)) for t in tickets]
    verdicts = [
        envelope("payment_not_required", not_required_payload(t, "ag-1"), "payment")
        for t in tickets
    ]
    rating.call("handle_ticket_completed", [*completions, completions[0]])
    rating.call("handle_payment_not_required", verdicts)
    with rating.db.connect() as conn:
        rows = conn.execute(select(invitations.c.ticket_id, invitations.c.token)).all()
    assert sorted(ticket for ticket, _ in rows) == sorted(tickets)
    assert len({token for _, token in rows}) == 3 and all(token for _, token in rows)

    rating.call("handle_ticket_completed", [completions[1], completions[2]])  # redelivered
    rating.call("handle_payment_not_required", verdicts[:1])
    with rating.db.connect() as conn:
        again = conn.execute(select(invitations.c.ticket_id, invitations.c.token)).all()
    assert sorted(again) == sorted(rows)
    invited = outbox_events(rating, "rating_invited")
    assert sorted(e["payload"]["ticket_id"] for e in invited) == sorted(tickets)
