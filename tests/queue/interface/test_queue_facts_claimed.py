"""The payment and rating facts through the queue's real batch handlers (SQLite and PostgreSQL):
each handler's claims and effect are one statement on PostgreSQL (``UnitOfWork.apply_claimed``),
and a batch still shows each fact once, as applying its events in turn would; a ticket read
(a read-only entry point) sends one statement, outside any transaction, on PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from mpp_contracts.envelope import make_envelope, read_envelope
from tests.queue.interface.test_queue_service_interface import queue  # noqa: F401 - fixture


def fact(event_type: str, source: str, payload: dict) -> dict:
    return read_envelope(make_envelope(event_type, payload, source=source, mall="mpp-test"))


def test_a_batch_of_facts_shows_each_once_in_the_order_applied_in_turn_would(queue):  # noqa: F811
    agency = queue("register_agency", {"code": "BPN", "name": "Kantor Pertanahan"})
    svc = queue(
        "plug_service",
        agency["id"],
        {"code": "UKUR", "name": "Pengukuran", "fee_idr": 5000, "sla_minutes": 60, "prefix": "U"},
    )
    a, b = (queue("take_ticket", {"service_id": svc["id"]}) for _ in range(2))

    def payment(event_type: str, ticket: dict, payment_id: str, status: str) -> dict:
        payload = {
            "payment_id": payment_id,
            "ticket_id": ticket["id"],
            "agency_id": agency["id"],
            "service_id": svc["id"],
            "amount_idr": 5000,
            "status": status,
            "provider": "simulator",
        }
        return fact(event_type, "payment", payload)

    def shown(ticket: dict) -> tuple:
        view = queue("get_ticket", ticket["id"], ticket["access_code"])
        return (view["payment"] or {}).get("id"), (view["payment"] or {}).get("status")

    first, second, other = (
        payment("payment_requested", a, "pay-a1", "pending"),
        payment("payment_requested", a, "pay-a2", "pending"),
        payment("payment_requested", b, "pay-b", "pending"),
    )
    queue("handle_payment_requested", [first, second, other, other])
    assert shown(a) == ("pay-a1", "pending"), "a request never overwrites the one before"
    assert shown(b) == ("pay-b", "pending")

    failed, paid = (
        payment("payment_succeeded", a, "pay-a1", "failed"),
        payment("payment_succeeded", a, "pay-a1", "succeeded"),
    )
    queue("handle_payment_succeeded", [failed, paid])
    assert shown(a) == ("pay-a1", "succeeded"), "the later status stays"
    queue("handle_payment_succeeded", [failed])  # redelivered: changes nothing
    queue("handle_payment_requested", [payment("payment_requested", a, "pay-a3", "pending")])
    assert shown(a) == ("pay-a1", "succeeded"), "a late request never hides a status"

    expires = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
    invited = [
        fact(
            "rating_invited",
            "rating",
            {
                "ticket_id": ticket["id"],
                "agency_id": agency["id"],
                "service_id": svc["id"],
                "token": f"token-{n}",
                "expires_at": expires + timedelta(days=n),
            },
        )
        for n, ticket in enumerate((a, b))
    ]
    queue("handle_rating_invited", invited)
    queue("handle_rating_invited", invited[:1])  # redelivered
    ratings = [queue("get_ticket", t["id"], t["access_code"])["rating"] for t in (a, b)]
    assert [r["token"] for r in ratings] == ["token-0", "token-1"]
    assert ratings[1]["expires_at"].startswith("2030-01-03T03:04:05")

    with queue.floor.engine.connect() as conn:
        handled = conn.execute(sa.text("SELECT handler, count(*) FROM processed_events GROUP BY 1"))
        assert dict(handled.all()) == {
            "handle_payment_requested": 4,
            "handle_payment_succeeded": 2,
            "handle_rating_invited": 2,
        }


def test_a_ticket_read_on_postgresql_is_one_statement_outside_a_transaction(queue):  # noqa: F811
    if queue.floor.engine.dialect.name != "postgresql":
        return  # SQLite reads never open a transaction (pysqlite begins before writes only)
    agency = queue("register_agency", {"code": "BPN", "name": "Kantor Pertanahan"})
    svc = queue(
        "plug_service",
        agency["id"],
        {"code": "UKUR", "name": "Pengukuran", "fee_idr": 0, "sla_minutes": 60, "prefix": "U"},
    )
    ticket = queue("take_ticket", {"service_id": svc["id"]})
    database = queue.floor.engine.url.database
    seen: list[bool] = []

    def _seen(conn, _cursor, statement, _params, _context, _many) -> None:
        # the ticket's reads (the outbox relay of the same process polls meanwhile)
        if conn.engine.url.database == database and "outbox" not in statement:
            seen.append(conn.connection.dbapi_connection.autocommit)

    sa.event.listen(sa.engine.Engine, "before_cursor_execute", _seen)
    try:
        view = queue("get_ticket", ticket["id"], ticket["access_code"])
    finally:
        sa.event.remove(sa.engine.Engine, "before_cursor_execute", _seen)
    assert view["status"] == "waiting" and view["position"] == 1
    assert seen and all(seen), "every statement in autocommit: psycopg2 sent no BEGIN"
    assert queue("take_ticket", {"service_id": svc["id"]})["position"] == 2  # writes: as before
