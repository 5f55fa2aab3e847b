"""Payment's completion handler claims each event in the fee's read (``claimed(riding=True)``,
decision 0006): on PostgreSQL no statement of its own, and on both databases a completion
handled before opens nothing, even one delivered again with another fee."""

from __future__ import annotations

import uuid

import sqlalchemy as sa
from sqlalchemy import func, select

from mpp_payment.adapters.tables import payments
from tests.payment.interface.conftest import completed_payload, envelope


def test_a_completion_handled_before_opens_nothing_and_its_claim_rides(
    payment_factory, db_url_factory
):
    payment = payment_factory(db_url_factory("payment"))
    statements: list[str] = []
    database = payment.db.url.database

    def _seen(conn, _cursor, statement, _params, _context, _many) -> None:
        if conn.engine.url.database == database and "outbox" not in statement:
            statements.append(statement)

    ticket_id = str(uuid.uuid4())
    completed = envelope("ticket_completed", completed_payload(ticket_id, "agency-1"))
    sa.event.listen(sa.engine.Engine, "before_cursor_execute", _seen)
    try:
        payment.call("handle_ticket_completed", [completed])
    finally:
        sa.event.remove(sa.engine.Engine, "before_cursor_execute", _seen)
    claims = [s for s in statements if "processed_events" in s]
    if payment.db.dialect.name == "postgresql":
        assert len(claims) == 1 and claims[0].startswith("WITH claim AS (INSERT"), claims
        assert "catalogue_services" in claims[0], "the claim rides in the fee's read"
    else:  # SQLite: the claim, then the read over it
        assert len(claims) == 1 and claims[0].startswith("INSERT INTO processed_events")
        assert any(s.startswith("WITH claim (event_id) AS (VALUES") for s in statements)

    again = {**completed, "payload": {**completed["payload"], "fee_idr": 70000}}
    payment.call("handle_ticket_completed", [again])  # the same event id: handled before
    payment.call("handle_ticket_completed", [completed, completed])  # twice in one batch
    with payment.db.connect() as conn:
        amounts = conn.execute(select(payments.c.amount_idr)).scalars().all()
        handled = conn.execute(sa.text("SELECT count(*) FROM processed_events")).scalar_one()
        opened = conn.execute(select(func.count()).select_from(payments)).scalar_one()
    assert amounts == [50000] and handled == 1 and opened == 1
    assert len(payment.events("payment_requested")) == 1


def test_the_fee_in_our_catalogue_copy_wins_over_the_ticket_fee(payment_factory, db_url_factory):
    """The fee read that carries the claim still reads our copy of the catalogue."""
    payment = payment_factory(db_url_factory("payment"))
    from mpp_payment.adapters.tables import catalogue

    with payment.db.begin() as conn:
        conn.execute(
            sa.insert(catalogue).values(
                id="svc-agency-2",
                agency_id="agency-2",
                code="PASPOR",
                name="Paspor",
                fee_idr=0,
                active=True,
                version=3,
            )
        )
    ticket_id = str(uuid.uuid4())
    payment.call(
        "handle_ticket_completed",
        [envelope("ticket_completed", completed_payload(ticket_id, "agency-2", fee=50000))],
    )
    assert payment.events("payment_requested") == []
    (verdict,) = payment.events("payment_not_required")
    assert verdict["payload"]["ticket_id"] == ticket_id
