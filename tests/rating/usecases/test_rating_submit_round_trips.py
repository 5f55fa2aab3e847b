"""What one rating submission sends the database (issue 20, item 4): the read model is folded in
the submission's own transaction, in one statement, instead of an event hop later (decision
0030); a replica of the former version skips the event it would have folded."""

from __future__ import annotations

from sqlalchemy import select

from mpp_chassis.claims import RidingClaim
from mpp_rating import usecases
from mpp_rating.adapters.tables import outbox, processed_events
from tests.rating.interface.conftest import completed_payload, not_required_payload
from tests.rating.usecases.test_rating_usecases_flow import invite, token_of
from tests.support.statements import recording, statements_of

ANSWERS = {f"U{i}": 4 for i in range(1, 10)}


def test_a_submission_folds_its_rating_into_the_read_model_in_one_statement(desk, db_url_factory):
    """Before: the submission left the read model to its own ``rating_submitted`` (a delivery, a
    worker, a transaction with the event's claim and 12 upserts each compiled anew). Now the fold
    is the submission's last statement; on PostgreSQL the former handler's claim rides along."""
    desk(usecases.submit_rating, desk.settings, {"token": invite(desk, "t-0"), "stars": 4})
    token = invite(desk, "t-1")
    body = {"token": token, "stars": 5, "answers": ANSWERS}
    answers = []

    sent = statements_of(
        desk.engine, lambda: answers.append(desk(usecases.submit_rating, desk.settings, body))
    )

    folds = [s for s in sent if "INSERT INTO rating_buckets" in s]
    assert len(folds) == 1, sent
    assert sent[-1] == folds[0], sent  # last: the busiest rows are locked until commit only
    if db_url_factory.backend == "postgres":
        assert folds[0].startswith("WITH claim AS (INSERT INTO processed_events"), folds[0]
        # before: 7 and the hop; now the invitation, its use carrying the event (a
        # data-modifying CTE), the rating (ON CONFLICT DO NOTHING, where a savepoint took three
        # round trips), the fold
        assert len(sent) == 4, sent
        assert sent[1].startswith("WITH change AS (UPDATE invitations SET used_at="), sent
    assert not any("SAVEPOINT" in s for s in sent), sent
    summary = desk(usecases.summary, desk.settings, {"agency": "ag-1", "period": "day"})
    assert summary["count"] == 2  # at once: no event hop to wait for
    submitted = desk.events("rating_submitted")[-1]
    assert submitted["rating_id"] == answers[0]["id"]
    with desk.engine.connect() as conn:  # a former handler finds each event claimed
        emitted = set(
            conn.execute(
                select(outbox.c.event_id).where(outbox.c.event_type == "rating_submitted")
            ).scalars()
        )
        claimed = set(
            conn.execute(
                select(processed_events.c.event_id).where(
                    processed_events.c.handler == "handle_rating_submitted"
                )
            ).scalars()
        )
    assert emitted == claimed and len(claimed) == 2


def test_the_statements_carrying_an_events_claim_run_prepared_on_postgresql(desk, db_url_factory):
    """The invitation's upsert and the read model's fold carry their event's claim on PostgreSQL
    and are planned once per connection (mpp_chassis.prepared). The upsert's ``.columns()`` had
    dropped its PREPARE option, and the fold never asked: both were planned at every event."""
    postgresql = db_url_factory.backend == "postgres"
    with recording(desk.engine) as sent:
        for n in range(2):
            ticket = f"t-{n}"
            claim = RidingClaim(f"ev-c{n}", "handle_ticket_completed", postgresql)
            desk(
                usecases.on_ticket_completed,
                desk.settings,
                completed_payload(ticket, "ag-1"),
                claim,
            )
            claim = RidingClaim(f"ev-p{n}", "handle_payment_settled", postgresql)
            desk(
                usecases.on_payment_settled,
                desk.settings,
                not_required_payload(ticket, "ag-1"),
                claim,
            )
            body = {"token": token_of(desk, ticket), "stars": 5, "answers": ANSWERS}
            desk(usecases.submit_rating, desk.settings, body)
    upserts = [s for s in sent.statements if "INSERT INTO invitations" in s]
    folds = [s for s in sent.statements if "INSERT INTO rating_buckets" in s]
    assert len(upserts) == 4 and len(folds) == 2, sent.statements
    if postgresql:
        assert all(s.startswith("WITH claim AS (INSERT INTO processed_events") for s in upserts)
        assert set(upserts + folds) <= set(sent.prepared), sent.prepared
    else:
        assert sent.prepared == []
