"""The simulator's "pay" button reads the invoice and writes its own book with one statement:
on PostgreSQL each statement commits alone (``Database(alone=…)``), no ``BEGIN`` and no
``COMMIT`` (issue 20); on SQLite as before. The book says paid, and the notice it signs pays."""

from __future__ import annotations

import sqlalchemy as sa

from mpp_payment.adapters.tables import payments, simulator_book
from tests.payment.interface.test_payment_provider_notices import (  # noqa: F401 - fixture
    AGENCY_ADMIN,
    on_provider,
)


def test_the_simulators_button_writes_its_book_with_statements_alone(on_provider):  # noqa: F811
    payment = on_provider("simulator")
    invoice = payment.invoice()
    database = payment.db.url.database
    seen: list[tuple[str, object]] = []

    def _seen(conn, _cursor, statement, _params, _context, _many) -> None:
        # the button's statements (the outbox relay of the same process polls meanwhile)
        if conn.engine.url.database == database and "outbox" not in statement:
            autocommit = getattr(conn.connection.dbapi_connection, "autocommit", None)
            seen.append((statement, autocommit))

    sa.event.listen(sa.engine.Engine, "before_cursor_execute", _seen)
    try:
        sent = payment.call("simulate_payment", AGENCY_ADMIN, invoice["id"])
    finally:
        sa.event.remove(sa.engine.Engine, "before_cursor_execute", _seen)
    assert sent["notification"] == "sent"
    with payment.db.connect() as conn:
        attempt = conn.execute(
            sa.select(payments.c.method_attempt).where(payments.c.id == invoice["id"])
        ).scalar_one()
        book = conn.execute(
            sa.select(simulator_book.c.status).where(
                simulator_book.c.order_id == f"{invoice['id']}-{attempt}"
            )
        ).scalar_one()
    assert book == "paid"
    if payment.db.dialect.name == "postgresql":
        assert [s.split()[0] for s, _ in seen] == ["SELECT", "UPDATE"], seen
        assert all(autocommit is True for _, autocommit in seen), "psycopg2 sent no BEGIN"
