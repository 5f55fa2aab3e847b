"""The rating handlers' claims ride in the invitation's upsert (``claimed(riding=True)``): on
PostgreSQL no statement of their own, and on both databases an event handled before changes
nothing, even one delivered again with other facts."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy import select

from mpp_rating.adapters.tables import invitations
from tests.rating.interface.conftest import completed_payload, envelope
from tests.rating.interface.test_rating_service_interface import outbox_events


def test_a_completion_handled_before_changes_nothing_and_its_claim_rides(rating):
    statements: list[str] = []
    database = rating.db.url.database

    def _seen(conn, _cursor, statement, _params, _context, _many) -> None:
        if conn.engine.url.database == database and "outbox" not in statement:
            statements.append(statement)

    completed = envelope("ticket_completed", completed_payload("t-r1", "ag-1", fee_idr=50000))
    sa.event.listen(sa.engine.Engine, "before_cursor_execute", _seen)
    try:
        rating.call("handle_ticket_completed", [completed])
    finally:
        sa.event.remove(sa.engine.Engine, "before_cursor_execute", _seen)
    claims = [s for s in statements if "processed_events" in s]
    if rating.db.dialect.name == "postgresql":
        assert len(claims) == 1 and claims[0].startswith("WITH claim AS (INSERT"), claims
        assert "INSERT INTO invitations" in claims[0], "the claim rides in the upsert"
    else:  # SQLite: the claim, then the upsert over it
        assert len(claims) == 1 and claims[0].startswith("INSERT INTO processed_events")
        assert any(s.startswith("WITH claim (event_id) AS (VALUES") for s in statements)

    again = {**completed, "payload": {**completed["payload"], "counter_id": "elsewhere"}}
    rating.call("handle_ticket_completed", [again])  # the same event id: handled before
    with rating.db.connect() as conn:
        counters = conn.execute(select(invitations.c.counter_id)).scalars().all()
        handled = conn.execute(sa.text("SELECT count(*) FROM processed_events")).scalar_one()
    assert counters == [completed["payload"]["counter_id"]] and handled == 1
    assert outbox_events(rating, "rating_invited") == []  # the fee is not paid yet
