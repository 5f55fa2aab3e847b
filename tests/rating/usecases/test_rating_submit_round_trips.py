"""What one rating submission sends the database (issue 20, item 4): the read model is folded in
the submission's own transaction, in one statement, instead of an event hop later (decision
0030); a replica of the former version skips the event it would have folded."""

from __future__ import annotations

from sqlalchemy import select

from mpp_rating import usecases
from mpp_rating.adapters.tables import outbox, processed_events
from tests.rating.usecases.test_rating_usecases_flow import invite
from tests.support.statements import statements_of

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
