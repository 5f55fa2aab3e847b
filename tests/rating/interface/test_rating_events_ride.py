"""The rating service's two hot events ride in the change that implies them
(``UnitOfWork.execute_with_event(changed_only=True)``): ``rating_invited`` in the token's issue,
``rating_submitted`` in the token's use. On PostgreSQL each is one statement with its change; on
both databases the event exists only if the change was made (one invitation, one submission)."""

from __future__ import annotations

import sqlalchemy as sa

from tests.rating.interface.test_rating_service_interface import outbox_events


def _writes(rating, work) -> list[str]:
    """The statements ``work`` sent to the rating database that store an event."""
    statements: list[str] = []
    database = rating.db.url.database

    def _seen(conn, _cursor, statement, _params, _context, _many) -> None:
        if conn.engine.url.database == database and "INSERT INTO outbox" in statement:
            statements.append(" ".join(statement.split()))

    sa.event.listen(sa.engine.Engine, "before_cursor_execute", _seen)
    try:
        work()
    finally:
        sa.event.remove(sa.engine.Engine, "before_cursor_execute", _seen)
    return statements


def test_the_invitation_and_the_submission_carry_their_events(rating):
    tokens: list[str] = []
    invited = _writes(rating, lambda: tokens.append(rating.complete("t-e1", "ag-1")))
    submitted = _writes(
        rating, lambda: rating.call("submit_rating", {"token": tokens[0], "stars": 5})
    )
    if rating.db.dialect.name == "postgresql":
        assert len(invited) == 1, invited
        assert invited[0].startswith("WITH change AS (UPDATE invitations SET token=")
        assert len(submitted) == 1, submitted
        assert submitted[0].startswith("WITH change AS (UPDATE invitations SET used_at=")
    else:  # SQLite: the change, then the event
        assert [s.split()[:3] for s in invited] == [["INSERT", "INTO", "outbox"]]
    (invitation,) = outbox_events(rating, "rating_invited")
    assert invitation["payload"]["token"] == tokens[0]
    (submission,) = outbox_events(rating, "rating_submitted")
    assert submission["payload"]["ticket_id"] == "t-e1" and submission["payload"]["stars"] == 5


def test_a_token_used_once_stores_one_submission(rating):
    token = rating.complete("t-e2", "ag-1")
    rating.call("submit_rating", {"token": token, "stars": 4})
    for _ in range(2):  # the token is used: refused, and no second event
        try:
            rating.call("submit_rating", {"token": token, "stars": 3})
        except Exception as error:  # noqa: BLE001 - the contract error arrives as raised
            assert getattr(error, "code", "") == "TOKEN_USED", error
        else:
            raise AssertionError("a used token was accepted")
    assert [e["payload"]["stars"] for e in outbox_events(rating, "rating_submitted")] == [4]
