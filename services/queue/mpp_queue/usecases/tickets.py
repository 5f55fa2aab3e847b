"""Tickets: issue, the virtual ticket (position and ETA), calling, counter actions, transfer.

Every state change is an optimistic update guarded by the status read (``WHERE status = …``):
whichever of two racing workers, in one process or two, commits first wins; the other touches
no row and either chooses again (call-next) or answers 409.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import and_, bindparam, func, insert, or_, select, text, union_all, update

from mpp_chassis.db import next_in_sequence
from mpp_contracts.errors import Conflict, Forbidden, NotFound
from mpp_queue.adapters.tables import (
    WAITING_BOOKED,
    WAITING_PRIORITY,
    WAITING_REGULAR,
    calls,
    counters,
    service_day_counts,
    services,
    ticket_sequences,
    tickets,
)
from mpp_queue.domain import access, announce, calling, eta, numbering, sla
from mpp_queue.domain.tickets import (
    Action,
    InvalidTransition,
    TicketState,
    TicketStatus,
    apply,
    transfer_queued_at,
)

from .common import Settings, check_agency, citizen_nik, invalid, iso, load_row, now_utc

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


# -- issuing -----------------------------------------------------------------------------------


# The statements of the hot paths (take-ticket, the virtual ticket) are built once, with bound
# parameters: building and cache-keying a statement costs more Python than executing it.
_SERVICE_BY_ID = select(services).where(services.c.id == bindparam("service_id"))
_INSERT_TICKET = insert(tickets)


def active_service(session, service_id: str) -> dict:
    row = session.execute(_SERVICE_BY_ID, {"service_id": service_id}).mappings().first()
    if row is None or not row["active"]:
        raise NotFound("SERVICE_NOT_FOUND", "no such service in the mall's catalogue")
    return dict(row)


def issue(
    uow,
    settings: Settings,
    service: dict,
    now: datetime,
    *,
    priority: str | None = None,
    nik_hash: str | None = None,
    nik_last4: str | None = None,
    phone: str | None = None,
    journey_id: str | None = None,
    queued_at: datetime | None = None,
    booking_id: str | None = None,
    booked_slot_start: datetime | None = None,
    transferred_from: str | None = None,
    seq: int | None = None,
    request_key: str | None = None,
) -> dict:
    """Insert one ticket with the next number of its line today and record ``ticket_issued``.

    The number comes from an atomic upsert on ``(prefix, day)``, unique across processes (or is
    ``seq``, already drawn by :func:`claim_place`). The ticket copies the service's fee and SLA,
    so a later catalogue change never rewrites it.
    """
    session = uow.session
    day = numbering.mall_day(now, settings.mall_timezone)
    if seq is None:
        seq = next_in_sequence(session, ticket_sequences, {"prefix": service["prefix"], "day": day})
    row = {
        "id": str(uuid.uuid4()),
        "journey_id": journey_id or str(uuid.uuid4()),
        "number": numbering.format_number(service["prefix"], seq),
        "day": day,
        "agency_id": service["agency_id"],
        "service_id": service["id"],
        "status": TicketStatus.WAITING.value,
        "priority": priority,
        "nik_hash": nik_hash,
        "nik_last4": nik_last4,
        "phone": phone,
        "issued_at": now,
        "queued_at": queued_at or now,
        "call_count": 0,
        "fee_idr": service["fee_idr"],
        "booking_id": booking_id,
        "booked_slot_start": booked_slot_start,
        "transferred_from": transferred_from,
        "sla_minutes": service["sla_minutes"],
        "sla_deadline": sla.sla_deadline(now, service["sla_minutes"]),
        "request_key": request_key,
    }
    session.execute(_INSERT_TICKET, row)
    uow.add_event(
        "ticket_issued",
        {
            **ticket_event({**row, "service_code": service["code"]}),
            "booking_id": booking_id,
            "transferred_from": transferred_from,
            "queued_at": row["queued_at"],
        },
    )
    return {**row, "service_code": service["code"], "service_name": service["name"]}


_CLAIM_PLACE_PG = text(
    """
    WITH place AS (
        INSERT INTO service_day_counts (service_id, day, issued) VALUES (:service_id, :day, 1)
        ON CONFLICT (service_id, day) DO UPDATE SET issued = service_day_counts.issued + 1
        WHERE CAST(:quota AS INTEGER) IS NULL OR service_day_counts.issued < :quota
        RETURNING issued
    )
    INSERT INTO ticket_sequences (prefix, day, last_seq) SELECT :prefix, :day, 1 FROM place
    ON CONFLICT (prefix, day) DO UPDATE SET last_seq = ticket_sequences.last_seq + 1
    RETURNING last_seq
    """
).bindparams(bindparam("day", type_=service_day_counts.c.day.type))

_RETURN_PLACE = (
    update(service_day_counts)
    .where(
        service_day_counts.c.service_id == bindparam("place_service_id"),
        service_day_counts.c.day == bindparam("place_day"),
        service_day_counts.c.issued > 0,
    )
    .values(issued=service_day_counts.c.issued - 1)
)


def _quota_exhausted(service: dict) -> Conflict:
    return Conflict(
        "QUOTA_EXHAUSTED",
        "today's quota for this service is used up",
        {"daily_quota": service["daily_quota"]},
    )


# A take-ticket holds this lock (shared) from before its place is claimed until its ticket
# commits or rolls back; :func:`reconcile_quotas` recounts a line only while it can hold the lock
# alone, i.e. while no ticket of that line is between its claim and its commit.
PLACE_LOCK_CLASS = 0x4D5051  # "MPQ": the first key of the two-key advisory lock
_HOLD_PLACES = text(
    "SELECT pg_advisory_xact_lock_shared(:lock_class, hashtext(:place))"
).bindparams(lock_class=PLACE_LOCK_CLASS)
_TRY_RECOUNT = text("SELECT pg_try_advisory_xact_lock(:lock_class, hashtext(:place))").bindparams(
    lock_class=PLACE_LOCK_CLASS
)


def _place_key(service_id: str, day) -> str:
    return f"{service_id}/{day.isoformat()}"


def claim_place(uow, service: dict, day) -> tuple[int, bool]:
    """Take one of today's walk-in places and the line's next number, or refuse (409) when the
    service's daily quota is used up. Returns ``(sequence value, claimed apart)``.

    Both increments are atomic, so concurrent kiosks (even in two processes) never share a number
    nor both take the last place. The two counter rows are the hot rows of a busy line: on
    PostgreSQL they are taken in one statement committed on its own (``execute_now``), so their
    locks last that statement, not the ticket's whole transaction; "claimed apart" tells the
    caller to return the place if the ticket is then not stored (its number stays unused, a gap
    like a voided paper ticket). SQLite has one writer at a time: there both stay in the ticket's
    transaction and a refusal rolls them back.
    """
    session = uow.session
    if session.get_bind().dialect.name == "postgresql":
        session.execute(_HOLD_PLACES, {"place": _place_key(service["id"], day)})
        rows = uow.execute_now(
            _CLAIM_PLACE_PG,
            {
                "service_id": service["id"],
                "day": day,
                "prefix": service["prefix"],
                "quota": service["daily_quota"],
            },
        )
        if not rows:
            raise _quota_exhausted(service)
        return rows[0][0], True
    issued = next_in_sequence(
        session, service_day_counts, {"service_id": service["id"], "day": day}, "issued"
    )
    if service["daily_quota"] and issued > service["daily_quota"]:
        raise _quota_exhausted(service)
    seq = next_in_sequence(session, ticket_sequences, {"prefix": service["prefix"], "day": day})
    return seq, False


# walk-in tickets of one line and day: the ones that took a place (not a booking's ticket, an
# on-time one or a late check-in's, nor a transfer's: :func:`transfer_ticket`)
_WALK_INS = """
    SELECT count(*) FROM tickets t
    WHERE t.service_id = {service} AND t.day = {day}
      AND t.booking_id IS NULL AND t.transferred_from IS NULL
      AND t.id NOT IN (
        SELECT b.ticket_id FROM bookings b
        WHERE b.service_id = {service} AND b.ticket_id IS NOT NULL
      )
"""
_DRIFTED = text(
    "SELECT c.service_id, c.issued, ("  # noqa: S608 - no input in the text
    + _WALK_INS.format(service="c.service_id", day="c.day")
    + ") AS walk_ins FROM service_day_counts c WHERE c.day = :day"
).bindparams(bindparam("day", type_=service_day_counts.c.day.type))
_RECOUNT = text(
    "UPDATE service_day_counts SET issued = ("  # noqa: S608 - no input in the text
    + _WALK_INS.format(service=":service_id", day=":day")
    + ") WHERE service_id = :service_id AND day = :day RETURNING issued"
).bindparams(bindparam("day", type_=service_day_counts.c.day.type))


def reconcile_quotas(uow, settings: Settings, now: datetime | None = None) -> int:
    """Set today's walk-in count of every line whose count drifted from its tickets back to the
    tickets issued; returns how many lines were corrected.

    On PostgreSQL a place is claimed in its own transaction (:func:`claim_place`): a process
    killed, or a database restarted, between that claim and the ticket's commit keeps the place
    taken with no ticket for it, and the line would refuse citizens before its quota. A line is
    recounted only while no take-ticket holds its place lock (one that does is mid-way and
    counted already); a busy line is left for the next sweep.
    """
    session = uow.session
    day = numbering.mall_day(now or now_utc(), settings.mall_timezone)
    locking = session.get_bind().dialect.name == "postgresql"
    corrected = 0
    for line in session.execute(_DRIFTED, {"day": day}).all():
        if line.issued == line.walk_ins:
            continue
        place = _place_key(line.service_id, day)
        if locking and not session.execute(_TRY_RECOUNT, {"place": place}).scalar_one():
            continue
        issued = session.execute(_RECOUNT, {"service_id": line.service_id, "day": day}).scalar()
        if issued != line.issued:
            corrected += 1
    return corrected


def issue_ticket(
    uow,
    settings: Settings,
    data: dict,
    now: datetime | None = None,
    request_key: str | None = None,
) -> dict:
    """A walk-in ticket from a kiosk or the citizen app: validate, claim a place, insert it.

    Returns the stored row; :func:`take_ticket` adds the virtual ticket (position and ETA).
    ``request_key`` is stored with it, unique (see :func:`take_ticket`).
    """
    session = uow.session
    service = active_service(session, data["service_id"])
    now = now or now_utc()
    day = numbering.mall_day(now, settings.mall_timezone)
    nik_hash, nik_last4 = citizen_nik(data.get("nik"), settings, day)
    seq, apart = claim_place(uow, service, day)
    try:
        return issue(
            uow,
            settings,
            service,
            now,
            priority=data.get("priority"),
            nik_hash=nik_hash,
            nik_last4=nik_last4,
            phone=data.get("phone"),
            seq=seq,
            request_key=request_key,
        )
    except Exception:
        if apart:
            uow.execute_now(_RETURN_PLACE, {"place_service_id": service["id"], "place_day": day})
        raise


_BY_REQUEST_KEY = select(tickets.c.id).where(tickets.c.request_key == bindparam("request_key"))


def ticket_for_request(
    session, settings: Settings, request_key: str, now: datetime | None = None
) -> dict | None:
    """The virtual ticket a keyed take-ticket already issued, if it did."""
    found = session.execute(_BY_REQUEST_KEY, {"request_key": request_key}).scalar_one_or_none()
    if found is None:
        return None
    return ticket_view(session, settings, load_ticket(session, found), now or now_utc())


def take_ticket(
    uow,
    settings: Settings,
    data: dict,
    now: datetime | None = None,
    request_key: str | None = None,
) -> dict:
    """:func:`issue_ticket` and the virtual ticket (its reads in the same transaction; the caller
    commits).

    With a ``request_key`` (the gateway's hash of a kiosk's ``Idempotency-Key``, its scope and
    the body) the same request issues one ticket however often it arrives: a retry that took over
    the key of a gateway that died mid-request gets the ticket the first attempt issued. Two
    arrivals at once: the second's insert violates the key's unique index, and the caller
    answers it with :func:`ticket_for_request` after rolling back.
    """
    now = now or now_utc()
    if request_key is not None:
        issued = ticket_for_request(uow.session, settings, request_key, now)
        if issued is not None:
            return issued
    row = issue_ticket(uow, settings, data, now, request_key=request_key)
    return ticket_view(uow.session, settings, row, now)


# -- the virtual ticket ------------------------------------------------------------------------


_TICKET_WITH_NAMES = (
    select(
        tickets,
        services.c.code.label("service_code"),
        services.c.name.label("service_name"),
        counters.c.name.label("counter_name"),
    )
    .join(services, services.c.id == tickets.c.service_id)
    .outerjoin(counters, counters.c.id == tickets.c.counter_id)
    .where(tickets.c.id == bindparam("ticket_id"))
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
# planning, not reading, was most of what these short index reads cost PostgreSQL
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
)


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


def place_in_line(session, settings: Settings, row: dict, now: datetime) -> dict:
    """Position and estimated wait of a waiting ticket (docs/queue-rules.md, "Virtual ticket").

    ``ahead`` is how many tickets of the same line the calling rule would call first (with the
    streak of the most priority-heavy open counter serving it); ``position`` = ``ahead + 1``. A
    booked ticket held until its slot has no position; its wait is the time to the slot.
    """
    result = {"position": None, "ahead": None, "estimated_wait_minutes": None}
    if row["status"] != TicketStatus.WAITING.value:
        return result
    open_counters = _serving_counters(session, row["agency_id"], row["service_id"])
    streak = max((c.priority_streak for c in open_counters), default=0)
    ahead = _ahead_in_line(session, settings, row, streak, now)
    if ahead is None:
        slot = row.get("booked_slot_start")
        if slot is not None and slot > now:
            result["estimated_wait_minutes"] = -(-int((slot - now).total_seconds()) // 60)
        return result
    result["ahead"] = ahead
    result["position"] = ahead + 1
    result["estimated_wait_minutes"] = eta.estimate_wait_minutes(
        ahead, recent_service_seconds(session, row["service_id"]), len(open_counters)
    )
    return result


def ticket_view(session, settings: Settings, row: dict, now: datetime | None = None) -> dict:
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
        **place_in_line(session, settings, row, now),
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


def withdraw_ticket(
    uow, settings: Settings, ticket_id: str, code: str | None, now: datetime | None = None
) -> dict:
    """The citizen gives up their place in line: with the ticket's access code only (anyone
    else gets the same 404 as for no ticket), and only while it waits (409 once called)."""
    row = load_ticket(uow.session, ticket_id)
    if not access.holds_code(settings.ticket_code_key, ticket_id, code):
        raise NotFound("TICKET_NOT_FOUND", "no such ticket")
    if row["status"] != TicketStatus.WAITING.value:
        raise Conflict("TICKET_NOT_WAITING", "only a waiting ticket can be given up")
    now = now or now_utc()
    reason = "cancelled by the citizen"
    row = _transition(uow, settings, row, "cancel", now, end_reason=reason)
    uow.add_event(
        "ticket_cancelled",
        {**ticket_event(row), "counter_id": None, "ended_at": row["ended_at"], "reason": reason},
    )
    breach_if_due(uow, row, now)
    return citizen_view(settings, ticket_view(uow.session, settings, row, now))


# -- calling -----------------------------------------------------------------------------------


def _open_counter(session, counter_id: str, actor: dict | None) -> dict:
    counter = load_row(session, counters, counter_id, "COUNTER_NOT_FOUND", "counter")
    check_agency(actor, counter["agency_id"])
    if not counter["is_open"]:
        raise Conflict("COUNTER_CLOSED", "this counter is closed")
    return counter


def _claim(session, ticket_id: str, counter: dict, actor: dict | None, now: datetime) -> bool:
    """Move one waiting ticket to ``called`` at this counter; False if someone was faster.

    A guarded update: of two counters claiming the same ticket, the second changes no row (on
    PostgreSQL it waits for the first transaction's outcome). Call-next on PostgreSQL claims
    through ``_CLAIM_FIRST_FREE_PG`` instead, which passes over tickets being claimed; SQLite has
    one writer at a time."""
    state = apply(TicketState(), Action.CALL, now, counter_id=counter["id"])
    return bool(
        session.execute(
            update(tickets)
            .where(tickets.c.id == ticket_id, tickets.c.status == TicketStatus.WAITING.value)
            .values(
                status=state.status.value,
                call_count=state.call_count,
                called_at=now,
                last_called_at=now,
                counter_id=counter["id"],
                officer_id=(actor or {}).get("key_id"),
            )
        ).rowcount
    )


_INSERT_CALL = insert(calls)  # values bound per execution: built (and cache-keyed) once


def record_call(
    uow,
    kind: str,
    row: dict,
    counter: dict,
    now: datetime,
    *,
    out_of_order: bool = False,
    request_key: str | None = None,
) -> None:
    """Keep the call for the display board and announce it (``ticket_called``/``_recalled``).
    A keyed press stores its key with the call (unique): its twin's insert fails and the caller
    answers the twin with the ticket this press called (:func:`ticket_for_press`)."""
    text = announce.announcement(row["number"], counter["name"])
    uow.session.execute(
        _INSERT_CALL,
        {
            "id": str(uuid.uuid4()),
            "ticket_id": row["id"],
            "counter_id": counter["id"],
            "agency_id": counter["agency_id"],
            "number": row["number"],
            "kind": kind,
            "day": row["day"],
            "called_at": now,
            "announcement": text,
            "request_key": request_key,
        },
    )
    uow.add_event(
        "ticket_called" if kind == "call" else "ticket_recalled",
        {
            **ticket_event(row),
            "counter_id": counter["id"],
            "counter_name": counter["name"],
            "call_count": row["call_count"],
            "called_at": now,
            "announcement": text,
            "spoken_announcement": announce.spoken_announcement(row["number"], counter["name"]),
            "out_of_order": out_of_order,
        },
    )


CLAIM_ROUNDS = 3  # reads of the line's heads before "nothing waiting" while others claim them
PREFERENCES = 10  # choices offered to one claim statement (PostgreSQL)

_CLAIM_FIRST_FREE_PG = text(
    """
    UPDATE tickets
    SET status = :status, call_count = :call_count, called_at = :now, last_called_at = :now,
        counter_id = :counter_id, officer_id = :officer_id
    WHERE id = (
        SELECT id FROM tickets
        WHERE id = ANY(:ids) AND (status = 'waiting') IS TRUE
        ORDER BY array_position(CAST(:ids AS TEXT[]), CAST(id AS TEXT))
        LIMIT 1
        FOR UPDATE SKIP LOCKED
    ) AND (status = 'waiting') IS TRUE
    RETURNING id
    """
).bindparams(bindparam("now", type_=tickets.c.called_at.type))
# ``IS TRUE`` keeps the status test a filter, never an index condition, so the choices are looked
# up by primary key whatever the statistics say. "waiting" is a passing state: statistics taken
# overnight, or while a new mall's table was small, call it rare, and the planner then scanned
# every waiting ticket of the mall through ``ix_tickets_sla`` (~1 ms at 2,500 waiting, inside
# the claim other counters skip past) instead of ten index lookups.


def _preferences(candidates, counter: dict, settings: Settings, now, limit: int) -> list:
    """The rule's choice, then what it would choose were that one gone, and so on."""
    remaining, choices = list(candidates), []
    while remaining and len(choices) < limit:
        choice = calling.choose_next(
            remaining,
            now=now,
            priority_streak=counter["priority_streak"],
            max_priority_streak=settings.max_priority_streak,
        )
        if choice is None:
            break
        choices.append(choice)
        remaining = [c for c in remaining if c.ticket_id != choice.candidate.ticket_id]
    return choices


def _claim_first_free(session, choices: list, counter: dict, actor, now):
    """PostgreSQL: claim, in one statement, the first of ``choices`` that is still waiting and
    that no other counter holds right now (``FOR UPDATE SKIP LOCKED`` in the rule's order)."""
    state = apply(TicketState(), Action.CALL, now, counter_id=counter["id"])
    won = session.execute(
        _CLAIM_FIRST_FREE_PG,
        {
            "ids": [c.candidate.ticket_id for c in choices],
            "status": state.status.value,
            "call_count": state.call_count,
            "now": now,
            "counter_id": counter["id"],
            "officer_id": (actor or {}).get("key_id"),
        },
    ).scalar_one_or_none()
    return next((c for c in choices if c.candidate.ticket_id == won), None)


def _choose_and_claim(session, settings: Settings, counter: dict, actor, day, now):
    """The rule's choice among the heads of the line, claimed for this counter; None if nothing
    is waiting. A head another counter holds (claimed or being claimed) is passed over at once
    for the rule's next choice; when every head read is gone, the heads are read again, further
    down the line than the ones found taken.

    On PostgreSQL the rule's first choices go to one claim statement that takes the first free
    one: with many counters pressing at once, claiming one choice per statement cost a round
    trip (and a statement) per head already taken."""
    tried: set[str] = set()
    one_statement = session.get_bind().dialect.name == "postgresql"
    for _ in range(CLAIM_ROUNDS):
        # read past the heads already found taken: with more counters pressing at once than
        # heads read, every head can be held by another counter while the line is long
        candidates = [
            c
            for c in line_candidates(
                session, list(counter["service_ids"]), day, now, heads=LINE_HEADS + len(tried)
            )
            if c.ticket_id not in tried
        ]
        while candidates:
            choices = _preferences(
                candidates, counter, settings, now, PREFERENCES if one_statement else 1
            )
            if not choices:
                return None
            if one_statement:
                won = _claim_first_free(session, choices, counter, actor, now)
            else:
                won = choices[0]
                if not _claim(session, won.candidate.ticket_id, counter, actor, now):
                    won = None
            if won is not None:
                return won
            gone = {c.candidate.ticket_id for c in choices}
            tried |= gone
            candidates = [c for c in candidates if c.ticket_id not in gone]
        if not tried:
            return None  # the line is empty, not contended
    return None


_SET_STREAK = (
    update(counters)
    .where(counters.c.id == bindparam("counter_id"))
    .values(priority_streak=bindparam("streak"))
)


_CALL_BY_REQUEST_KEY = select(calls.c.ticket_id).where(
    calls.c.request_key == bindparam("request_key")
)


def ticket_for_press(
    session, settings: Settings, request_key: str, now: datetime | None = None
) -> dict | None:
    """The ticket a keyed press (call-next, call, recall) already called, if it did."""
    found = session.execute(_CALL_BY_REQUEST_KEY, {"request_key": request_key}).scalar_one_or_none()
    if found is None:
        return None
    return ticket_view(session, settings, load_ticket(session, found), now or now_utc())


def call_next(
    uow,
    settings: Settings,
    counter_id: str,
    actor: dict | None,
    now: datetime | None = None,
    request_key: str | None = None,
) -> dict:
    """Call the next eligible ticket at a counter (the rule is ``domain.calling``).

    Reads the heads of today's line of the counter's services, lets the domain choose with this
    counter's priority streak, and claims the choice with a guarded update. If another counter
    (in this process or another) claimed it first, or is claiming it right now, the update
    touches no row and the next choice is tried at once, so two counters never get the same
    ticket and none waits for another's transaction.
    """
    session = uow.session
    counter = _open_counter(session, counter_id, actor)
    now = now or now_utc()
    if request_key is not None and (done := ticket_for_press(session, settings, request_key, now)):
        return done  # the officer's retried press: the ticket it called, not the next one
    day = numbering.mall_day(now, settings.mall_timezone)
    choice = _choose_and_claim(session, settings, counter, actor, day, now)
    if choice is None:
        raise NotFound("NO_TICKET_WAITING", "no ticket is waiting for this counter's services")
    ticket_id = choice.candidate.ticket_id
    session.execute(_SET_STREAK, {"counter_id": counter_id, "streak": choice.priority_streak})
    row = load_ticket(session, ticket_id)
    record_call(uow, "call", row, counter, now, request_key=request_key)
    return ticket_view(session, settings, row, now)


def call_ticket(
    uow,
    settings: Settings,
    ticket_id: str,
    counter_id: str | None,
    actor: dict | None,
    now: datetime | None = None,
    request_key: str | None = None,
) -> dict:
    """Call one ticket out of order (e.g. the officer sees an urgent case). The counter must
    serve the ticket's service; the counter's priority streak is left alone."""
    if not counter_id:
        raise invalid("counter_id", "calling a specific ticket needs the calling counter")
    session = uow.session
    counter = _open_counter(session, counter_id, actor)
    row = load_ticket(session, ticket_id)
    check_agency(actor, row["agency_id"])  # another agency's ticket: 403, whatever the counter
    if row["service_id"] not in counter["service_ids"]:
        raise Conflict("COUNTER_DOES_NOT_SERVE", "this counter does not serve the ticket's service")
    now = now or now_utc()
    if row["status"] != TicketStatus.WAITING.value or not _claim(
        session, ticket_id, counter, actor, now
    ):
        status = session.execute(
            select(tickets.c.status).where(tickets.c.id == ticket_id)
        ).scalar_one()
        raise Conflict(
            "INVALID_TRANSITION",
            f"cannot call a {status} ticket",
            {"status": status, "action": "call", "reason": "not_allowed"},
        )
    row = load_ticket(session, ticket_id)
    record_call(uow, "call", row, counter, now, out_of_order=True, request_key=request_key)
    return ticket_view(session, settings, row, now)


# -- counter actions ---------------------------------------------------------------------------

ACTIONS = {
    "recall": Action.RECALL,
    "start": Action.START,
    "complete": Action.COMPLETE,
    "no-show": Action.NO_SHOW,
    "cancel": Action.CANCEL,
    "transfer": Action.TRANSFER,
}


def _state(row) -> TicketState:
    return TicketState(
        status=TicketStatus(row["status"]),
        call_count=row["call_count"],
        called_at=row["called_at"],
        last_called_at=row["last_called_at"],
        started_at=row["started_at"],
        completed_at=row["completed_at"],
        ended_at=row["ended_at"],
        counter_id=row["counter_id"],
    )


# a transition's guarded update, built once; it returns the stored row, so the ticket is not
# read again (its service and counter names are the ones read before: a transition keeps both)
_TRANSITION = (
    update(tickets)
    .where(
        tickets.c.id == bindparam("t_id"),
        tickets.c.status == bindparam("t_status"),
        tickets.c.call_count == bindparam("t_call_count"),
    )
    .values(
        status=bindparam("status"),
        call_count=bindparam("call_count"),
        last_called_at=bindparam("last_called_at"),
        started_at=bindparam("started_at"),
        completed_at=bindparam("completed_at"),
        ended_at=bindparam("ended_at"),
        end_reason=bindparam("end_reason"),
    )
    .returning(*tickets.c)
)


def _transition(
    uow, settings: Settings, row: dict, action: str, now: datetime, end_reason: str | None = None
) -> dict:
    """Apply a domain transition and store it, guarded by the status and call count we read.
    ``end_reason`` is stored for a no-show or a cancellation (other actions keep the row's)."""
    try:
        state = apply(
            _state(row), ACTIONS[action], now, no_show_after_calls=settings.no_show_after_calls
        )
    except InvalidTransition as exc:
        raise Conflict(
            "INVALID_TRANSITION",
            str(exc),
            {"status": row["status"], "action": action, "reason": exc.reason},
        ) from None
    stored = (
        uow.session.execute(
            _TRANSITION,
            {
                "t_id": row["id"],
                "t_status": row["status"],
                "t_call_count": row["call_count"],
                "status": state.status.value,
                "call_count": state.call_count,
                "last_called_at": state.last_called_at,
                "started_at": state.started_at,
                "completed_at": state.completed_at,
                "ended_at": state.ended_at,
                "end_reason": end_reason if end_reason is not None else row.get("end_reason"),
            },
        )
        .mappings()
        .first()
    )
    if stored is None:
        raise Conflict("CONCURRENT_UPDATE", "the ticket changed meanwhile; reload and retry")
    return {**row, **stored}


def ticket_action(
    uow,
    settings: Settings,
    ticket_id: str,
    action: str,
    data: dict | None,
    actor: dict | None,
    now: datetime | None = None,
    request_key: str | None = None,
) -> dict:
    """An officer's action on a ticket. A keyed recall or call that was already done answers
    the ticket as it did; the other actions are transitions a repeat cannot apply twice (409)."""
    data = data or {}
    if request_key is not None and action in ("call", "recall"):
        if done := ticket_for_press(uow.session, settings, request_key, now):
            return done
    if action == "call":
        return call_ticket(
            uow, settings, ticket_id, data.get("counter_id"), actor, now, request_key=request_key
        )
    if action not in ACTIONS:
        raise NotFound("ACTION_NOT_FOUND", f"unknown ticket action {action}")
    session = uow.session
    row = load_ticket(session, ticket_id)
    check_agency(actor, row["agency_id"])
    now = now or now_utc()
    if action == "transfer":
        return transfer_ticket(uow, settings, row, data, now)
    reason = data.get("reason") if action in ("no-show", "cancel") else None
    row = _transition(uow, settings, row, action, now, end_reason=reason)
    base = ticket_event(row)
    if action == "recall":
        counter = load_row(session, counters, row["counter_id"], "COUNTER_NOT_FOUND", "counter")
        record_call(uow, "recall", row, counter, now, request_key=request_key)
    elif action == "start":
        uow.add_event(
            "ticket_serving",
            {**base, "counter_id": row["counter_id"], "started_at": row["started_at"]},
        )
    elif action == "complete":
        called, started, done = (row[k] for k in ("called_at", "started_at", "completed_at"))
        uow.add_event(
            "ticket_completed",
            {
                **base,
                "counter_id": row["counter_id"],
                "officer_id": row["officer_id"],
                "fee_idr": row["fee_idr"],
                "called_at": called,
                "started_at": started,
                "completed_at": done,
                "waiting_seconds": int((called - row["issued_at"]).total_seconds()),
                "serving_seconds": int((done - started).total_seconds()),
            },
        )
    else:
        uow.add_event(
            "ticket_no_show" if action == "no-show" else "ticket_cancelled",
            {
                **base,
                "counter_id": row["counter_id"],
                "ended_at": row["ended_at"],
                "reason": data.get("reason"),
            },
        )
    if row["status"] not in OPEN_STATES:
        breach_if_due(uow, row, now)
    return ticket_view(session, settings, row, now)


def transfer_ticket(uow, settings: Settings, row: dict, data: dict, now: datetime) -> dict:
    """Send a citizen on to another service (of any agency) without losing their place.

    The current ticket ends as ``transferred``; a new ticket in the target line keeps the journey
    id, and is queued at the citizen's original arrival time (``domain.tickets.
    transfer_queued_at``), so they do not wait at the back a second time. The quota is not
    charged again: the citizen is already in the building."""
    session = uow.session
    target_id = data.get("to_service_id")
    if not target_id:
        raise invalid("to_service_id", "a transfer needs the target service")
    if target_id == row["service_id"]:
        raise invalid("to_service_id", "the ticket is already in this service's line")
    target = active_service(session, target_id)
    row = _transition(uow, settings, row, "transfer", now)
    new = issue(
        uow,
        settings,
        target,
        now,
        priority=row["priority"],
        nik_hash=row["nik_hash"],
        nik_last4=row["nik_last4"],
        phone=row["phone"],
        journey_id=row["journey_id"],
        queued_at=transfer_queued_at(row["queued_at"], now),
        transferred_from=row["id"],
    )
    session.execute(
        update(tickets).where(tickets.c.id == row["id"]).values(transferred_to=new["id"])
    )
    row["transferred_to"] = new["id"]
    uow.add_event(
        "ticket_transferred",
        {
            **ticket_event(row),
            "counter_id": row["counter_id"],
            "new_ticket_id": new["id"],
            "new_number": new["number"],
            "to_agency_id": target["agency_id"],
            "to_service_id": target["id"],
            "transferred_at": now,
        },
    )
    breach_if_due(uow, row, now)
    return ticket_view(session, settings, row, now)


# -- SLA ---------------------------------------------------------------------------------------


def breach_if_due(uow, row: dict, now: datetime) -> bool:
    """Flag the ticket and emit ``sla_breached`` if it is (or ended) past its SLA; only once.

    The guarded update (``sla_breached_at IS NULL``) makes "once" hold across the ending action
    and the SLA timer, in any number of processes."""
    if row.get("sla_breached_at") is not None or row.get("sla_minutes") is None:
        return False
    end = row["ended_at"] if row["status"] not in OPEN_STATES else None
    if not sla.sla_breached(
        issued_at=row["issued_at"],
        started_at=row["started_at"],
        completed_at=end,
        sla_minutes=row["sla_minutes"],
        now=now,
    ):
        return False
    flagged = uow.session.execute(
        update(tickets)
        .where(tickets.c.id == row["id"], tickets.c.sla_breached_at.is_(None))
        .values(sla_breached_at=now)
    ).rowcount
    if not flagged:
        return False
    deadline = row["sla_deadline"] or sla.sla_deadline(row["issued_at"], row["sla_minutes"])
    uow.add_event(
        "sla_breached",
        {
            **ticket_event(row),
            "sla_minutes": row["sla_minutes"],
            "stage": "serving" if row["started_at"] is not None else "waiting",
            "breached_at": deadline,
        },
    )
    return True


# -- facts from other services -----------------------------------------------------------------


def record_payment(uow, payload: dict, *, initial: bool) -> None:
    """Show the payment on the ticket. ``initial`` (payment_requested) never overwrites a later
    status that arrived first: events may come out of order."""
    query = update(tickets).where(tickets.c.id == payload["ticket_id"])
    if initial:
        query = query.where(tickets.c.payment_status.is_(None))
    uow.session.execute(
        query.values(payment_id=payload["payment_id"], payment_status=payload["status"])
    )


def record_rating_invitation(uow, payload: dict) -> None:
    uow.session.execute(
        update(tickets)
        .where(tickets.c.id == payload["ticket_id"])
        .values(rating_token=payload["token"], rating_expires_at=payload["expires_at"])
    )
