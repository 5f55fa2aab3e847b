"""Online bookings: slots with capacity and a daily quota, booking, cancelling, kiosk check-in,
no-shows after the check-in window and the no-show penalty (docs/queue-rules.md, "Bookings")."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import insert, select, update

from mpp_chassis.sequences import next_in_sequence
from mpp_contracts.errors import Conflict
from mpp_queue.adapters.tables import (
    bookings,
    service_day_counts,
    services,
    slot_counts,
    tickets,
)
from mpp_queue.domain import bookings as rules
from mpp_queue.domain import nik, numbering

from .catalogue import opening_periods
from .common import Settings, citizen_nik, invalid, iso, load_row, now_utc
from .issuing import active_service, issue
from .tickets import load_ticket, ticket_view

BOOKED = "booked"
NO_SHOW = "no_show"


def _rules(service: dict) -> dict:
    if not service.get("booking") or not service.get("opening_hours"):
        raise Conflict("BOOKING_NOT_OFFERED", "this service does not take bookings")
    return service["booking"]


def _slots(service: dict, day: date, tz: str) -> list[rules.Slot]:
    booking = _rules(service)
    return rules.generate_slots(
        day,
        tz,
        opening_periods(service["opening_hours"]),
        booking["slot_minutes"],
        booking["capacity"],
    )


def _utc(value: datetime) -> str:
    return iso(value.astimezone(UTC))


def booking_view(row: dict) -> dict:
    """A booking as the API shows it. Its instants are written in UTC, as read back from the
    database: a new booking's slot times are computed in the mall's zone, and without this the
    answer to ``POST /v1/bookings`` spelled them with the mall's offset and ``GET`` in UTC."""
    return {
        "id": row["id"],
        "agency_id": row["agency_id"],
        "service_id": row["service_id"],
        "status": row["status"],
        "slot_start": _utc(row["slot_start"]),
        "slot_end": _utc(row["slot_end"]),
        "check_in_opens_at": _utc(row["checkin_opens_at"]),
        "check_in_closes_at": _utc(row["checkin_closes_at"]),
        "nik": nik.mask_nik(row["nik_last4"]),
        "priority": row.get("priority"),
        "ticket_id": row.get("ticket_id"),
        "created_at": iso(row["created_at"]),
        "ended_at": iso(row.get("ended_at")),
    }


def _event(row: dict) -> dict:
    return {
        "booking_id": row["id"],
        "agency_id": row["agency_id"],
        "service_id": row["service_id"],
        "slot_start": row["slot_start"],
        "status": row["status"],
        "ticket_id": row.get("ticket_id"),
    }


def list_slots(
    uow, settings: Settings, service_id: str, day: str | date | None, now: datetime | None = None
) -> dict:
    """The day's slots with what is left of each; a slot is bookable until its check-in window
    closes, while it has room and the day's quota is not used up."""
    session = uow.session
    service = active_service(session, service_id)
    now = now or now_utc()
    if isinstance(day, str):
        try:
            day = date.fromisoformat(day)
        except ValueError:
            raise invalid("date", "expected YYYY-MM-DD") from None
    day = day or numbering.mall_day(now, settings.mall_timezone)
    slots = _slots(service, day, settings.mall_timezone)
    booking = service["booking"]
    start, end = numbering.day_bounds(day, settings.mall_timezone)
    taken = {
        r.slot_start: r.booked
        for r in session.execute(
            select(slot_counts.c.slot_start, slot_counts.c.booked).where(
                slot_counts.c.service_id == service_id,
                slot_counts.c.slot_start >= start,
                slot_counts.c.slot_start < end,
            )
        )
    }
    booked_today = (
        session.execute(
            select(service_day_counts.c.booked).where(
                service_day_counts.c.service_id == service_id, service_day_counts.c.day == day
            )
        ).scalar_one_or_none()
        or 0
    )
    quota = booking.get("daily_quota")
    quota_left = rules.quota_left(quota, booked_today) if quota else None
    items = []
    for slot in slots:
        booked = taken.get(slot.start, 0)
        remaining = max(0, slot.capacity - booked)
        if quota_left is not None:
            remaining = min(remaining, quota_left)
        closes = slot.start + timedelta(minutes=booking["late_minutes"])
        items.append(
            {
                "start": iso(slot.start),
                "end": iso(slot.end),
                "capacity": slot.capacity,
                "booked": booked,
                "remaining": remaining,
                "bookable": remaining > 0 and now <= closes,
            }
        )
    return {
        "service_id": service_id,
        "date": day.isoformat(),
        "daily_quota": quota,
        "quota_left": quota_left,
        "items": items,
    }


def _no_show_times(session, nik_hash: str, settings: Settings, now: datetime) -> list[datetime]:
    """This citizen's booking no-shows recent enough to matter (bounded by the index)."""
    horizon = now - timedelta(
        days=settings.booking_no_show_window_days + settings.booking_block_days
    )
    return list(
        session.execute(
            select(bookings.c.ended_at).where(
                bookings.c.nik_hash == nik_hash,
                bookings.c.status == NO_SHOW,
                bookings.c.ended_at > horizon,
            )
        ).scalars()
    )


def booking_for_request(session, request_key: str) -> dict | None:
    """The booking a keyed request already made, if it did."""
    row = session.execute(select(bookings).where(bookings.c.request_key == request_key)).first()
    return None if row is None else booking_view(row._asdict())


def create_booking(
    uow,
    settings: Settings,
    data: dict,
    now: datetime | None = None,
    request_key: str | None = None,
) -> dict:
    """Book a slot for a citizen (one open booking per citizen, service and day; the caller
    commits). With a ``request_key`` (the gateway's hash of the app's ``Idempotency-Key``, its
    scope and the body) the same request books once however often it arrives: a retry that took
    over the key of a gateway that died mid-request gets the booking, not ``ALREADY_BOOKED``.
    Two arrivals at once: the second is refused (by the key's unique index, the full slot or the
    citizen's booking for the day), and the caller answers it with :func:`booking_for_request`
    after rolling back."""
    session = uow.session
    if request_key is not None:
        booked = booking_for_request(session, request_key)
        if booked is not None:
            return booked
    service = active_service(session, data["service_id"])
    booking = _rules(service)
    now = now or now_utc()
    slot_start = data["slot_start"]
    if isinstance(slot_start, str):
        slot_start = datetime.fromisoformat(slot_start)
    numbering.require_aware(slot_start, "slot_start")
    day = numbering.mall_day(slot_start, settings.mall_timezone)
    slot = next(
        (s for s in _slots(service, day, settings.mall_timezone) if s.start == slot_start), None
    )
    if slot is None:
        raise invalid("slot_start", "not the start of one of this service's slots")
    closes = slot.start + timedelta(minutes=booking["late_minutes"])
    if now > closes:
        raise Conflict("SLOT_PASSED", "this slot's check-in window has closed")
    nik_hash, nik_last4 = citizen_nik(
        data["nik"], settings, numbering.mall_day(now, settings.mall_timezone)
    )
    blocked_until = rules.booking_blocked_until(
        _no_show_times(session, nik_hash, settings, now),
        now,
        threshold=settings.booking_no_show_threshold,
        window_days=settings.booking_no_show_window_days,
        block_days=settings.booking_block_days,
    )
    if blocked_until is not None:
        raise Conflict(
            "BOOKING_BLOCKED",
            "too many missed bookings: booking is blocked for a while",
            {"blocked_until": iso(blocked_until)},
        )
    duplicate = session.execute(
        select(bookings.c.id).where(
            bookings.c.nik_hash == nik_hash,
            bookings.c.status == BOOKED,
            bookings.c.service_id == service["id"],
            bookings.c.day == day,
        )
    ).first()
    if duplicate is not None:
        raise Conflict("ALREADY_BOOKED", "this citizen already holds a booking for that day")
    # Atomic increments; a refusal raises and the transaction (increment included) rolls back.
    in_slot = next_in_sequence(
        session, slot_counts, {"service_id": service["id"], "slot_start": slot.start}, "booked"
    )
    if in_slot > slot.capacity:
        raise Conflict("SLOT_FULL", "this slot is fully booked")
    in_day = next_in_sequence(
        session, service_day_counts, {"service_id": service["id"], "day": day}, "booked"
    )
    if booking.get("daily_quota") and in_day > booking["daily_quota"]:
        raise Conflict("QUOTA_EXHAUSTED", "the day's booking quota is used up")
    row = {
        "id": str(uuid.uuid4()),
        "agency_id": service["agency_id"],
        "service_id": service["id"],
        "day": day,
        "slot_start": slot.start,
        "slot_end": slot.end,
        "status": BOOKED,
        "nik_hash": nik_hash,
        "nik_last4": nik_last4,
        "phone": data.get("phone"),
        "priority": data.get("priority"),
        "checkin_opens_at": slot.start - timedelta(minutes=booking["early_minutes"]),
        "checkin_closes_at": closes,
        "created_at": now,
    }
    session.execute(insert(bookings).values(**row, request_key=request_key))
    uow.add_event("booking_created", _event(row))
    return booking_view(row)


def get_booking(uow, booking_id: str) -> dict:
    return booking_view(load_row(uow.session, bookings, booking_id, "BOOKING_NOT_FOUND"))


def _end(session, row: dict, status: str, now: datetime, **values) -> dict:
    changed = session.execute(
        update(bookings)
        .where(bookings.c.id == row["id"], bookings.c.status == row["status"])
        .values(status=status, ended_at=now, **values)
    ).rowcount
    if not changed:
        raise Conflict("BOOKING_CHANGED", "the booking changed meanwhile; reload it")
    return {**row, "status": status, "ended_at": now, **values}


def _require_booked(row: dict) -> None:
    if row["status"] != BOOKED:
        raise Conflict(
            "INVALID_BOOKING_STATE",
            f"the booking is {row['status']}",
            {"status": row["status"]},
        )


def cancel_booking(uow, booking_id: str, now: datetime | None = None) -> dict:
    """Cancel and give the place back to the slot and the day's quota."""
    session = uow.session
    row = load_row(session, bookings, booking_id, "BOOKING_NOT_FOUND")
    _require_booked(row)
    row = _end(session, row, "cancelled", now or now_utc())
    session.execute(
        update(slot_counts)
        .where(
            slot_counts.c.service_id == row["service_id"],
            slot_counts.c.slot_start == row["slot_start"],
        )
        .values(booked=slot_counts.c.booked - 1)
    )
    session.execute(
        update(service_day_counts)
        .where(
            service_day_counts.c.service_id == row["service_id"],
            service_day_counts.c.day == row["day"],
        )
        .values(booked=service_day_counts.c.booked - 1)
    )
    uow.add_event("booking_cancelled", _event(row))
    return booking_view(row)


def check_in(
    uow,
    settings: Settings,
    booking_id: str,
    now: datetime | None = None,
    request_key: str | None = None,
) -> dict:
    """Check in at a kiosk: on time gives a ticket held for the slot (called first once the slot
    starts); too early is refused (come back, the slot is kept); late loses the booking and
    gives a walk-in ticket in the normal line. ``request_key`` (the kiosk's key) is stored with
    the ticket, unique: :func:`check_in_for_request` finds the answer again."""
    session = uow.session
    row = load_row(session, bookings, booking_id, "BOOKING_NOT_FOUND")
    now = now or now_utc()
    # the timer may have marked the booking a no-show already: arriving later that day is still
    # a late check-in (a walk-in ticket, no strike), whenever the timer last ran
    today = numbering.mall_day(now, settings.mall_timezone)
    if not (row["status"] == NO_SHOW and row["day"] == today):
        _require_booked(row)
    service = dict(
        session.execute(select(services).where(services.c.id == row["service_id"])).mappings().one()
    )
    booking = service["booking"] or {}
    verdict = rules.check_in(
        row["slot_start"],
        now,
        early_minutes=booking.get("early_minutes", 0),
        late_minutes=booking.get("late_minutes", 0),
    )
    if verdict == "too_early":
        raise Conflict(
            "TOO_EARLY",
            "check-in for this booking has not opened yet",
            {"check_in_opens_at": iso(row["checkin_opens_at"])},
        )
    on_time = verdict == "on_time"
    ticket = issue(
        uow,
        settings,
        service,
        now,
        priority=row["priority"],
        nik_hash=row["nik_hash"],
        nik_last4=row["nik_last4"],
        phone=row["phone"],
        booking_id=row["id"] if on_time else None,
        booked_slot_start=row["slot_start"] if on_time else None,
        request_key=request_key,
    )
    row = _end(session, row, "checked_in" if on_time else "late", now, ticket_id=ticket["id"])
    uow.add_event("booking_checked_in", _event(row))
    return {"booking": booking_view(row), "ticket": ticket_view(session, settings, ticket, now)}


def check_in_for_request(
    session, settings: Settings, booking_id: str, request_key: str, now: datetime | None = None
) -> dict | None:
    """What a keyed check-in of this booking already answered (the booking, the ticket it gave),
    if it did: a kiosk's retry after a lost answer gets it, not 409 ``INVALID_BOOKING_STATE``."""
    row = session.execute(
        select(bookings)
        .join(tickets, tickets.c.id == bookings.c.ticket_id)
        .where(bookings.c.id == booking_id, tickets.c.request_key == request_key)
    ).first()
    if row is None:
        return None  # not checked in, or by another request (another key)
    row = row._asdict()
    ticket = load_ticket(session, row["ticket_id"])
    return {"booking": booking_view(row), "ticket": ticket_view(session, settings, ticket, now)}


def sweep_no_shows(uow, settings: Settings, now: datetime | None = None) -> int:
    """Mark bookings whose check-in window closed without a check-in as no-shows (timer).

    The no-show is dated at the window's close, the instant it became one, whatever time the
    timer runs; the guarded update keeps it once across replicas."""
    session = uow.session
    now = now or now_utc()
    due = session.execute(
        select(bookings)
        .where(bookings.c.status == BOOKED, bookings.c.checkin_closes_at < now)
        .order_by(bookings.c.checkin_closes_at)
        .limit(settings.sweep_batch)
    ).mappings()
    marked = 0
    for row in [dict(r) for r in due]:
        if not rules.is_no_show(
            row["slot_start"],
            now,
            int((row["checkin_closes_at"] - row["slot_start"]).total_seconds() // 60),
            False,
        ):
            continue
        changed = session.execute(
            update(bookings)
            .where(bookings.c.id == row["id"], bookings.c.status == BOOKED)
            .values(status=NO_SHOW, ended_at=row["checkin_closes_at"])
        ).rowcount
        if changed:
            uow.add_event("booking_no_show", _event({**row, "status": NO_SHOW}))
            marked += 1
    return marked
