"""What the floor shows and what managers read: the display snapshot, the queue KPIs and the
timers that keep the floor honest (SLA breaches, end of day)."""

from __future__ import annotations

from dataclasses import asdict
from datetime import date, datetime

from sqlalchemy import select, update

from mpp_queue.adapters.tables import calls, counters, tickets
from mpp_queue.domain import kpi, numbering
from mpp_queue.domain.announce import spoken_announcement
from mpp_queue.domain.tickets import TicketStatus

from .common import Settings, invalid, iso, now_utc
from .counter_actions import breach_if_due
from .tickets import OPEN_STATES, load_ticket, ticket_event

# -- display -----------------------------------------------------------------------------------


def display_snapshot(
    uow,
    settings: Settings,
    agency_id: str | None = None,
    recent: int = 10,
    now: datetime | None = None,
) -> dict:
    """Current call per counter and the latest calls (and recalls) of the day.

    What a board shows when it (re)connects; the live updates are the ``ticket_called`` and
    ``ticket_recalled`` events, which carry the same announcement text."""
    session = uow.session
    now = now or now_utc()
    day = numbering.mall_day(now, settings.mall_timezone)
    counter_query = select(counters).order_by(counters.c.agency_id, counters.c.name)
    if agency_id:
        counter_query = counter_query.where(counters.c.agency_id == agency_id)
    rows = [dict(r) for r in session.execute(counter_query).mappings()]
    current: dict[str, dict] = {}
    active = session.execute(
        select(
            tickets.c.id,
            tickets.c.number,
            tickets.c.status,
            tickets.c.counter_id,
            tickets.c.last_called_at,
            tickets.c.service_id,
        ).where(
            tickets.c.day == day,
            tickets.c.status.in_((TicketStatus.CALLED.value, TicketStatus.SERVING.value)),
        )
    ).all()
    for t in active:
        seen = current.get(t.counter_id)
        if seen is None or t.last_called_at > seen["_at"]:
            current[t.counter_id] = {
                "_ticket_id": t.id,
                "number": t.number,
                "status": t.status,
                "service_id": t.service_id,
                "called_at": iso(t.last_called_at),
                "_at": t.last_called_at,
            }
    recent_query = (
        select(calls).where(calls.c.day == day).order_by(calls.c.called_at.desc()).limit(recent)
    )
    if agency_id:
        recent_query = recent_query.where(calls.c.agency_id == agency_id)
    recent_calls = [
        {
            "_ticket_id": c["ticket_id"],  # matched with the current calls below, never shown
            "number": c["number"],
            "counter_id": c["counter_id"],
            "agency_id": c["agency_id"],
            "kind": c["kind"],
            "called_at": iso(c["called_at"]),
            "announcement": c["announcement"],
        }
        for c in session.execute(recent_query).mappings()
    ]
    names = {r["id"]: r["name"] for r in rows}
    board = []
    for r in rows:
        call = current.get(r["id"])
        if call is not None:
            call = {k: v for k, v in call.items() if not k.startswith("_")} | {
                "announcement": next(
                    (
                        c["announcement"]
                        for c in recent_calls
                        if c["_ticket_id"] == call["_ticket_id"] and c["counter_id"] == r["id"]
                    ),
                    None,
                )
            }
        board.append(
            {
                "counter_id": r["id"],
                "counter_name": r["name"],
                "agency_id": r["agency_id"],
                "is_open": r["is_open"],
                "current": call,
            }
        )
    for c in recent_calls:
        c["counter_name"] = names.get(c["counter_id"])
        # a board that missed the live event speaks the call from here, in words
        c["spoken_announcement"] = (
            spoken_announcement(c["number"], c["counter_name"])
            if c["counter_name"]
            else c["announcement"]
        )
        del c["_ticket_id"]  # a board stands in a public hall: nothing that opens a ticket
    return {
        "generated_at": iso(now),
        "date": day.isoformat(),
        "agency_id": agency_id,
        "counters": board,
        "recent_calls": recent_calls,
    }


# -- KPIs --------------------------------------------------------------------------------------


def _stats(s: kpi.Stats) -> dict:
    return {
        "count": s.count,
        "mean_seconds": round(s.mean, 3) if s.mean is not None else None,
        "median_seconds": s.median,
        "p90_seconds": s.p90,
    }


def _kpi_view(key_names: tuple[str, ...], key: tuple, value: kpi.Kpi) -> dict:
    data = asdict(value)
    data["waiting"] = _stats(value.waiting)
    data["serving"] = _stats(value.serving)
    return {**dict(zip(key_names, key, strict=True)), **data}


def ticket_records(session, day: date, agency_id: str | None) -> list[kpi.TicketRecord]:
    """The day's tickets as the reporting side sees them; the ticket rows are the fold of the
    ticket events (issue, call, start, complete, no-show, cancel, transfer, SLA breach)."""
    query = select(tickets).where(tickets.c.day == day).order_by(tickets.c.issued_at)
    if agency_id:
        query = query.where(tickets.c.agency_id == agency_id)
    return [
        kpi.TicketRecord(
            agency_id=r["agency_id"],
            service_id=r["service_id"],
            counter_id=r["counter_id"],
            day=r["day"],
            issued_at=r["issued_at"],
            called_at=r["called_at"],
            started_at=r["started_at"],
            completed_at=r["completed_at"],
            status=TicketStatus(r["status"]),
            transferred=r["transferred_to"] is not None,
            sla_breached=r["sla_breached_at"] is not None,
        )
        for r in session.execute(query).mappings()
    ]


GROUPINGS = {
    "by_agency": ("agency_id",),
    "by_service": ("agency_id", "service_id"),
    "by_counter": ("agency_id", "counter_id"),
}


def queue_stats(
    uow,
    settings: Settings,
    agency_id: str | None = None,
    day: str | date | None = None,
    now: datetime | None = None,
) -> dict:
    """Waiting and serving times (mean, median, p90), served, no-shows, transfers, cancellations
    and SLA breaches for one mall day: overall and per agency, service and counter."""
    if isinstance(day, str):
        try:
            day = date.fromisoformat(day)
        except ValueError:
            raise invalid("date", "expected YYYY-MM-DD") from None
    day = day or numbering.mall_day(now or now_utc(), settings.mall_timezone)
    records = ticket_records(uow.session, day, agency_id)
    overall = kpi.compute_kpis(records, ()).get((), kpi.Kpi())
    result = {
        "date": day.isoformat(),
        "agency_id": agency_id,
        "timezone": settings.mall_timezone,
        "overall": _kpi_view((), (), overall),
    }
    for name, group_by in GROUPINGS.items():
        result[name] = [
            _kpi_view(group_by, key, value)
            for key, value in kpi.compute_kpis(records, group_by).items()
            if name != "by_counter" or key[1] is not None
        ]
    result["by_hour"] = [
        {"hour": h.hour, "taken": h.taken, "served": h.served, "waiting": _stats(h.waiting)}
        for h in kpi.by_hour(records, settings.mall_timezone)
    ]
    return result


# -- timers ------------------------------------------------------------------------------------


def sweep_sla(uow, settings: Settings, now: datetime | None = None) -> int:
    """Emit ``sla_breached`` for open tickets past their deadline (once each, see
    ``breach_if_due``). Reads only open tickets past their deadline (``ix_tickets_sla``)."""
    session = uow.session
    now = now or now_utc()
    due = session.execute(
        select(tickets.c.id)
        .where(
            tickets.c.status.in_(OPEN_STATES),
            tickets.c.sla_deadline < now,
            tickets.c.sla_breached_at.is_(None),
        )
        .order_by(tickets.c.sla_deadline)
        .limit(settings.sweep_batch)
    ).scalars()
    return sum(breach_if_due(uow, load_ticket(session, ticket_id), now) for ticket_id in list(due))


def close_past_days(uow, settings: Settings, now: datetime | None = None) -> int:
    """Cancel tickets of earlier mall days still waiting or called (reason ``day_closed``): the
    numbers have restarted, the line is gone, and open tickets must not pile up for ever."""
    session = uow.session
    now = now or now_utc()
    today = numbering.mall_day(now, settings.mall_timezone)
    stale = session.execute(
        select(tickets.c.id)
        .where(
            tickets.c.status.in_((TicketStatus.WAITING.value, TicketStatus.CALLED.value)),
            tickets.c.day < today,
        )
        .limit(settings.sweep_batch)
    ).scalars()
    closed = 0
    for ticket_id in list(stale):
        row = load_ticket(session, ticket_id)
        changed = session.execute(
            update(tickets)
            .where(tickets.c.id == ticket_id, tickets.c.status == row["status"])
            .values(status=TicketStatus.CANCELLED.value, ended_at=now, end_reason="day_closed")
        ).rowcount
        if changed:
            uow.add_event(
                "ticket_cancelled",
                {
                    **ticket_event(row),
                    "counter_id": row["counter_id"],
                    "ended_at": now,
                    "reason": "day_closed",
                },
            )
            closed += 1
    return closed
