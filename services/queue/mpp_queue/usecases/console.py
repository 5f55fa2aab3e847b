"""What an officer's console shows: the counter, the tickets it holds and the line it serves, in
the order call-next would take them (the same rule, the same heads: ``domain.calling``)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select

from mpp_contracts import rpc as contracts
from mpp_queue.adapters.tables import counters, services, tickets
from mpp_queue.domain import numbering
from mpp_queue.domain.tickets import TicketStatus

from .common import Settings, check_agency, iso, load_row, now_utc
from .counter_calls import call_preferences
from .tickets import line_candidates, staff_view, ticket_view

HELD = (TicketStatus.CALLED.value, TicketStatus.SERVING.value)


def counter_line(
    uow,
    settings: Settings,
    counter_id: str,
    actor: dict | None,
    query: dict,
    now: datetime | None = None,
) -> dict:
    """The counter, the tickets it holds (called or being served: more than one is the console's
    warning) and the first ``limit`` callable tickets of its services in call order, with the
    day's count of all waiting ones (booked tickets before their slot are waiting, not callable).
    Staff views only: no access code, no rating token, no NIK beyond its last digits."""
    session = uow.session
    now = now or now_utc()
    counter = load_row(session, counters, counter_id, "COUNTER_NOT_FOUND", "counter")
    check_agency(actor, counter["agency_id"])  # before the query: strangers learn nothing
    limit = contracts.load(contracts.CounterLineQuerySchema, query)["limit"]
    day = numbering.mall_day(now, settings.mall_timezone)
    service_ids = list(counter["service_ids"])
    names = {
        r.id: (r.code, r.name)
        for r in session.execute(
            select(services.c.id, services.c.code, services.c.name).where(
                services.c.id.in_(service_ids or [""])
            )
        )
    }
    choices = call_preferences(
        line_candidates(session, service_ids, day, now, heads=limit), counter, settings, now, limit
    )
    order = [c.candidate.ticket_id for c in choices]
    rows = {}
    if order:
        rows = {
            r["id"]: r
            for r in session.execute(select(tickets).where(tickets.c.id.in_(order))).mappings()
        }
    waiting = []
    for ticket_id in order:
        row = rows[ticket_id]
        code, name = names.get(row["service_id"], (None, None))
        waiting.append(
            {
                "id": row["id"],
                "number": row["number"],
                "service_id": row["service_id"],
                "service_code": code,
                "service_name": name,
                "priority": row["priority"],
                "queued_at": iso(row["queued_at"]),
                "booked_slot_start": iso(row["booked_slot_start"]),
                "waited_minutes": int((now - row["queued_at"]).total_seconds() // 60),
                "sla_deadline": iso(row["sla_deadline"]),
            }
        )
    held = session.execute(
        select(tickets)
        .where(tickets.c.counter_id == counter_id, tickets.c.status.in_(HELD))
        .order_by(tickets.c.last_called_at)
    ).mappings()
    waiting_count = session.execute(
        select(func.count())
        .select_from(tickets)
        .where(
            tickets.c.service_id.in_(service_ids or [""]),
            tickets.c.day == day,
            tickets.c.status == TicketStatus.WAITING.value,
        )
    ).scalar_one()
    return {
        "counter": {
            "id": counter["id"],
            "agency_id": counter["agency_id"],
            "name": counter["name"],
            "is_open": counter["is_open"],
            "service_ids": service_ids,
        },
        "generated_at": iso(now),
        "current": [staff_view(ticket_view(session, settings, dict(r), now)) for r in held],
        "waiting": waiting,
        "waiting_count": waiting_count,
        "no_show_after_calls": settings.no_show_after_calls,
    }
