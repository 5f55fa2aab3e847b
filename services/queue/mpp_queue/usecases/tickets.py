"""The virtual ticket: its events, its place in line and estimated wait, the views the
citizen and the staff read, and giving it up.

Every state change is an optimistic update guarded by the status read (``WHERE status = …``):
whichever of two racing workers, in one process or two, commits first wins; the other touches
no row and answers 409.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import and_, bindparam, func, or_, select, text, union_all

from mpp_chassis.prepared import PREPARE
from mpp_contracts.errors import Forbidden, NotFound
from mpp_queue.adapters.tables import (
    WAITING_BOOKED,
    WAITING_PRIORITY,
    WAITING_REGULAR,
    counters,
    services,
    tickets,
)
from mpp_queue.domain import access, calling, eta
from mpp_queue.domain.tickets import (
    TicketStatus,
)

from .common import Settings, check_agency, iso, now_utc

OPEN_STATES = (TicketStatus.WAITING.value, TicketStatus.CALLED.value, TicketStatus.SERVING.value)


def ticket_event(row) -> dict:
    return {
        "ticket_id": row["id"],
        "journey_id": row["journey_id"],
        "number": row["number"],
        "agency_id": row["agency_id"],
        "service_id": row["service_id"],
        "service_code": row["service_code"],
        "priority": row["priority"],
        "issued_at": row["issued_at"],
    }


# -- the virtual ticket ------------------------------------------------------------------------


WITH_NAMES = (
    select(
        tickets,
        services.c.code.label("service_code"),
        services.c.name.label("service_name"),
        counters.c.name.label("counter_name"),
        services.c.version.label("service_version"),
        services.c.payment_terms_version,
        services.c.payment_required,
    )
    .join(services, services.c.id == tickets.c.service_id)
    .outerjoin(counters, counters.c.id == tickets.c.counter_id)
)
"""Tickets with their service's code and name and their counter's name (as views show them),
and the service's version and payment terms (a completion's route, read with its ticket:
``payment_terms.completion_route``)."""
# a read by key, planned once per connection (~226 µs a plan, ~40 µs a run: mpp_chassis.prepared)
_TICKET_WITH_NAMES = WITH_NAMES.where(tickets.c.id == bindparam("ticket_id")).execution_options(
    **PREPARE
)


def load_ticket(session, ticket_id: str) -> dict:
    row = session.execute(_TICKET_WITH_NAMES, {"ticket_id": ticket_id}).mappings().first()
    if row is None:
        raise NotFound("TICKET_NOT_FOUND", "no such ticket")
    return dict(row)


LINE_HEADS = 10  # per class: enough spare choices when other counters claim the first ones


def _heads(condition: str, *order):
    columns = (
        tickets.c.id,
        tickets.c.service_id,
        tickets.c.queued_at,
        tickets.c.priority,
        tickets.c.booked_slot_start,
    )
    return (
        select(*columns)
        .where(
            tickets.c.service_id.in_(bindparam("service_ids", expanding=True)),
            tickets.c.day == bindparam("day"),
            text(condition),  # literally the partial index's condition (adapters.tables)
        )
        .order_by(*order, tickets.c.queued_at, tickets.c.id)
        .limit(bindparam("heads"))
    )


# one statement for the three classes (a parse, a plan and a round trip, not three each):
# planning, not reading, was most of what these short index reads cost PostgreSQL; prepared, it
# is planned once per connection (the partial indexes' conditions are literal, not parameters)
_HEADS = union_all(
    *(
        select(head.subquery())
        for head in (
            _heads(WAITING_BOOKED, tickets.c.booked_slot_start).where(
                tickets.c.booked_slot_start <= bindparam("now")
            ),
            _heads(WAITING_PRIORITY),
            _heads(WAITING_REGULAR),
        )
    )
).execution_options(**PREPARE)


def line_candidates(
    session, service_ids: list[str], day, now: datetime, heads: int = LINE_HEADS
) -> list[calling.Candidate]:
    """The heads of today's line of some services: the first few callable booked, priority and
    regular tickets. The calling rule only ever picks a head, so call-next costs three short
    range reads of partial indexes holding only waiting tickets (``ix_tickets_heads_*``), however
    long the line or the history is."""
    params = {"service_ids": list(service_ids), "day": day, "now": now, "heads": heads}
    rows = session.execute(_HEADS, params).all()
    return [
        calling.Candidate(
            ticket_id=r.id,
            service_id=r.service_id,
            queued_at=r.queued_at,
            priority=r.priority,
            booked_slot_start=r.booked_slot_start,
            checked_in=r.booked_slot_start is not None,  # booked tickets exist from check-in on
        )
        for r in rows
    ]


def _line_counts_query(booked_slot: bool):
    """One statement counting what stands before a waiting ticket: booked tickets ready (or, for
    a booked ticket, those ordered before it), its own class ahead and the other class waiting.
    One pass over the line's index range instead of three ``COUNT``\\ s."""
    line = and_(
        tickets.c.service_id == bindparam("service_id"),
        tickets.c.status == TicketStatus.WAITING.value,
        tickets.c.day == bindparam("day"),
    )
    booked = tickets.c.booked_slot_start
    queued_at, ticket_id = bindparam("queued_at"), bindparam("ticket_id")
    before_me = or_(
        tickets.c.queued_at < queued_at,
        and_(tickets.c.queued_at == queued_at, tickets.c.id < ticket_id),
    )
    if booked_slot:
        slot = bindparam("slot")
        return select(
            func.count().filter(
                booked.is_not(None), or_(booked < slot, and_(booked == slot, before_me))
            )
        ).where(line)
    walk_in = booked.is_(None)
    priority = tickets.c.priority.is_not(None)
    regular = tickets.c.priority.is_(None)
    return select(
        func.count().filter(booked.is_not(None), booked <= bindparam("now")),
        func.count().filter(walk_in, priority, before_me),
        func.count().filter(walk_in, regular, before_me),
        func.count().filter(walk_in, priority),
        func.count().filter(walk_in, regular),
    ).where(line)


_BOOKED_AHEAD = _line_counts_query(booked_slot=True)
_WALK_IN_AHEAD = _line_counts_query(booked_slot=False)


def _ahead_in_line(session, settings: Settings, row: dict, streak: int, now: datetime):
    """Tickets the calling rule would call before this one (``None``: not callable yet), from
    indexed counts (``domain.calling.position_from_counts``), not by loading the line."""
    params = {
        "service_id": row["service_id"],
        "day": row["day"],
        "queued_at": row["queued_at"],
        "ticket_id": row["id"],
    }
    slot = row.get("booked_slot_start")
    if slot is not None:
        if slot > now:
            return None
        return session.execute(_BOOKED_AHEAD, {**params, "slot": slot}).scalar_one()
    counts = session.execute(_WALK_IN_AHEAD, {**params, "now": now}).one()
    booked_ready, priority_ahead, regular_ahead, priority_waiting, regular_waiting = counts
    is_priority = row["priority"] is not None
    return calling.position_from_counts(
        priority=is_priority,
        booked_ready=booked_ready,
        same_class_ahead=priority_ahead if is_priority else regular_ahead,
        other_class_waiting=regular_waiting if is_priority else priority_waiting,
        priority_streak=streak,
        max_priority_streak=settings.max_priority_streak,
    )


_OPEN_COUNTERS = select(counters.c.id, counters.c.service_ids, counters.c.priority_streak).where(
    counters.c.is_open.is_(True), counters.c.agency_id == bindparam("agency_id")
)


def _serving_counters(session, agency_id: str, service_id: str) -> list:
    return [
        c
        for c in session.execute(_OPEN_COUNTERS, {"agency_id": agency_id}).all()
        if service_id in c.service_ids
    ]


_RECENT_DURATIONS = (
    select(tickets.c.started_at, tickets.c.completed_at)
    .where(tickets.c.service_id == bindparam("service_id"), tickets.c.completed_at.is_not(None))
    .order_by(tickets.c.completed_at.desc())
    .limit(bindparam("n"))
)


def recent_service_seconds(session, service_id: str, n: int = eta.RECENT_SAMPLE_SIZE) -> list:
    """The last ``n`` serving durations of a service, oldest first (``ix_tickets_completed``)."""
    rows = session.execute(_RECENT_DURATIONS, {"service_id": service_id, "n": n}).all()
    return [(r.completed_at - r.started_at).total_seconds() for r in reversed(rows) if r.started_at]


def place_in_line(
    session, settings: Settings, row: dict, now: datetime, line_memo: dict | None = None
) -> dict:
    """Position and estimated wait of a waiting ticket (docs/queue-rules.md, "Virtual ticket").

    ``ahead`` is how many tickets of the same line the calling rule would call first (with the
    streak of the most priority-heavy open counter serving it); ``position`` = ``ahead + 1``. A
    booked ticket held until its slot has no position; its wait is the time to the slot.

    ``line_memo`` (a dict the caller keeps) shares the line's open counters and recent serving
    times between the views of one transaction (tickets of the same line).
    """
    result = {"position": None, "ahead": None, "estimated_wait_minutes": None}
    if row["status"] != TicketStatus.WAITING.value:
        return result
    line = (row["agency_id"], row["service_id"])
    if line_memo is not None and line in line_memo:
        open_counters, recent = line_memo[line]
    else:
        open_counters = _serving_counters(session, *line)
        recent = None
    streak = max((c.priority_streak for c in open_counters), default=0)
    ahead = _ahead_in_line(session, settings, row, streak, now)
    if ahead is None:
        slot = row.get("booked_slot_start")
        if slot is not None and slot > now:
            result["estimated_wait_minutes"] = -(-int((slot - now).total_seconds()) // 60)
        return result
    if recent is None:
        recent = recent_service_seconds(session, row["service_id"])
        if line_memo is not None:
            line_memo[line] = (open_counters, recent)
    result["ahead"] = ahead
    result["position"] = ahead + 1
    result["estimated_wait_minutes"] = eta.estimate_wait_minutes(ahead, recent, len(open_counters))
    return result


# What a group of new walk-in tickets of one line needs for their positions and waits, in one
# statement (take-tickets grouped, .take_groups): from one pass over the line's waiting tickets,
# the classes' totals, the booked tickets ready and, in the calling order, the walk-ins queued
# from the group's first on (the group's own tickets and whoever came between them); the open
# counters serving the line (how many, the longest priority streak); its last serving times.
# Each ticket's counts are the totals offset by its place in that tail: one statement for the
# group, not three or four per ticket. The status is literal SQL, so the plan PostgreSQL keeps
# for the prepared statement still sees which indexes hold waiting tickets (decision 0007).
_GROUP_LINE = (
    text(
        f"""
    SELECT line.*, serving.open_counters, serving.streak, recent.started, recent.completed
    FROM (
        SELECT
            count(*) FILTER (WHERE booked_slot_start <= :first_now) AS booked_ready,
            array_agg(booked_slot_start) FILTER (
                WHERE booked_slot_start > :first_now AND booked_slot_start <= :last_now
            ) AS booked_soon,
            count(*) FILTER (WHERE booked_slot_start IS NULL AND priority IS NOT NULL)
                AS priority_waiting,
            count(*) FILTER (WHERE booked_slot_start IS NULL AND priority IS NULL)
                AS regular_waiting,
            array_agg(id ORDER BY queued_at, id) FILTER (
                WHERE booked_slot_start IS NULL AND queued_at >= :first_queued
            ) AS tail_ids,
            array_agg(priority IS NOT NULL ORDER BY queued_at, id) FILTER (
                WHERE booked_slot_start IS NULL AND queued_at >= :first_queued
            ) AS tail_priority
        FROM tickets
        WHERE service_id = :service_id AND status = '{TicketStatus.WAITING.value}' AND day = :day
    ) AS line, (
        SELECT count(*) AS open_counters, COALESCE(max(priority_streak), 0) AS streak
        FROM counters
        WHERE is_open AND agency_id = :agency_id
          AND CAST(service_ids AS JSONB) @> jsonb_build_array(CAST(:service_id AS TEXT))
    ) AS serving, (
        SELECT array_agg(started_at) AS started, array_agg(completed_at) AS completed
        FROM (
            SELECT started_at, completed_at FROM tickets
            WHERE service_id = :service_id AND completed_at IS NOT NULL
            ORDER BY completed_at DESC LIMIT :recent
        ) AS last
    ) AS recent
    """
    )
    .bindparams(
        bindparam("day", type_=tickets.c.day.type),
        recent=eta.RECENT_SAMPLE_SIZE,
    )
    .execution_options(**PREPARE)
)  # one line's: planned once per connection (~130 µs each time)


def group_places(session, settings: Settings, rows: list[dict], nows: list[datetime]) -> list:
    """:func:`place_in_line` for new waiting walk-in tickets of one line (stored, not yet
    committed), ``nows[i]`` the instant ``rows[i]`` was asked for: the same positions and waits,
    from one read of the line, its open counters and its serving times."""
    first = rows[0]
    line = (
        session.execute(
            _GROUP_LINE,
            {
                "service_id": first["service_id"],
                "agency_id": first["agency_id"],
                "day": first["day"],
                "first_now": min(nows),
                "last_now": max(nows),
                "first_queued": min(row["queued_at"] for row in rows),
            },
        )
        .mappings()
        .one()
    )
    recent = [  # as recent_service_seconds reads them (the median ignores their order)
        (completed - started).total_seconds()
        for started, completed in zip(line["started"] or (), line["completed"] or (), strict=True)
        if started
    ]
    tail = list(zip(line["tail_ids"] or (), line["tail_priority"] or (), strict=True))
    tail_count = {True: 0, False: 0}
    for _, is_priority in tail:
        tail_count[is_priority] += 1
    before_tail = {
        True: line["priority_waiting"] - tail_count[True],
        False: line["regular_waiting"] - tail_count[False],
    }
    seen = {True: 0, False: 0}
    in_tail = {}
    for ticket_id, is_priority in tail:
        in_tail[ticket_id] = seen[is_priority]
        seen[is_priority] += 1
    soon = line["booked_soon"] or ()
    places = []
    for row, now in zip(rows, nows, strict=True):
        is_priority = row["priority"] is not None
        ahead = calling.position_from_counts(
            priority=is_priority,
            booked_ready=line["booked_ready"] + sum(slot <= now for slot in soon),
            same_class_ahead=before_tail[is_priority] + in_tail[row["id"]],
            other_class_waiting=line["regular_waiting" if is_priority else "priority_waiting"],
            priority_streak=line["streak"],
            max_priority_streak=settings.max_priority_streak,
        )
        places.append(
            {
                "position": ahead + 1,
                "ahead": ahead,
                "estimated_wait_minutes": eta.estimate_wait_minutes(
                    ahead, recent, line["open_counters"]
                ),
            }
        )
    return places


def ticket_view(
    session,
    settings: Settings,
    row: dict,
    now: datetime | None = None,
    line_memo: dict | None = None,
    place: dict | None = None,
) -> dict:
    """The ticket as the API shows it; ``place``: its position and wait, if already known
    (:func:`group_places`)."""
    now = now or now_utc()
    payment = rating = transferred_to = None
    if row.get("payment_id"):
        payment = {
            "id": row["payment_id"],
            "status": row["payment_status"],
            "href": f"/v1/payments/{row['payment_id']}",
        }
    if row.get("rating_token"):
        rating = {
            "token": row["rating_token"],
            "expires_at": iso(row["rating_expires_at"]),
            "href": "/v1/ratings",
        }
    if row.get("transferred_to"):
        number = session.execute(
            select(tickets.c.number).where(tickets.c.id == row["transferred_to"])
        ).scalar_one_or_none()
        transferred_to = {
            "id": row["transferred_to"],
            "number": number,
            "href": f"/v1/tickets/{row['transferred_to']}",
        }
    deadline = row.get("sla_deadline")
    return {
        "id": row["id"],
        "journey_id": row["journey_id"],
        "number": row["number"],
        "status": row["status"],
        "agency_id": row["agency_id"],
        "service_id": row["service_id"],
        "service_code": row.get("service_code"),
        "service_name": row.get("service_name"),
        "priority": row["priority"],
        "nik_last4": row.get("nik_last4"),
        "issued_at": iso(row["issued_at"]),
        "queued_at": iso(row.get("queued_at")),
        "called_at": iso(row.get("called_at")),
        "last_called_at": iso(row.get("last_called_at")),
        "started_at": iso(row.get("started_at")),
        "completed_at": iso(row.get("completed_at")),
        "ended_at": iso(row.get("ended_at")),
        "call_count": row.get("call_count", 0),
        "counter_id": row.get("counter_id"),
        "counter_name": row.get("counter_name"),
        **(place or place_in_line(session, settings, row, now, line_memo)),
        "fee_idr": row["fee_idr"],
        "booking_id": row.get("booking_id"),
        "booked_slot_start": iso(row.get("booked_slot_start")),
        "transferred_from": row.get("transferred_from"),
        "transferred_to": transferred_to,
        "sla": {
            "minutes": row.get("sla_minutes"),
            "deadline": iso(deadline),
            "breached": row.get("sla_breached_at") is not None,
        },
        "payment": payment,
        "rating": rating,
    }


def citizen_view(settings: Settings, view: dict) -> dict:
    """The ticket as its holder sees it: with its access code, and a transfer's new ticket's."""
    key = settings.ticket_code_key
    shown = {**view, "access_code": access.access_code(key, view["id"])}
    if view.get("transferred_to"):
        moved = view["transferred_to"]
        shown["transferred_to"] = {**moved, "access_code": access.access_code(key, moved["id"])}
    return shown


def staff_view(view: dict) -> dict:
    """The ticket as staff see it: never the citizen's access code nor their rating token (the
    verdict is the citizen's alone: an officer must not rate their own service)."""
    rating = view.get("rating")
    return {**view, "access_code": None, "rating": rating and {**rating, "token": None}}


def get_ticket(
    uow,
    settings: Settings,
    ticket_id: str,
    code: str | None = None,
    actor: dict | None = None,
    now: datetime | None = None,
) -> dict:
    """The holder of the ticket's access code reads it whole; staff of its agency (or the mall
    admin) read it without the citizen's secrets; anyone else learns nothing, not even that it
    exists (the same 404 as for no ticket)."""
    row = load_ticket(uow.session, ticket_id)
    view = ticket_view(uow.session, settings, row, now)
    if access.holds_code(settings.ticket_code_key, ticket_id, code):
        return citizen_view(settings, view)
    if actor is not None:
        try:
            check_agency(actor, row["agency_id"])
        except Forbidden:
            pass
        else:
            return staff_view(view)
    raise NotFound("TICKET_NOT_FOUND", "no such ticket")
