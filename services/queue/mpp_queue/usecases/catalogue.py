"""The mall's catalogue: agencies, their services and counters. Every change is an event so the
other services keep their own copy; no change ever touches a ticket already issued."""

from __future__ import annotations

import uuid
from datetime import date, time

from sqlalchemy import and_, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from mpp_contracts.errors import Conflict, NotFound
from mpp_queue.adapters.tables import agencies, counters, services, tickets
from mpp_queue.domain import bookings as booking_rules
from mpp_queue.domain import numbering
from mpp_queue.domain.tickets import TicketStatus

from .common import (
    after_key,
    check_agency,
    invalid,
    iso,
    load_row,
    now_utc,
    page,
    page_limit,
)

# -- agencies ----------------------------------------------------------------------------------


def agency_view(row) -> dict:
    return {"id": row["id"], "code": row["code"], "name": row["name"]}


def register_agency(uow, data: dict) -> dict:
    agency = {"id": str(uuid.uuid4()), "code": data["code"], "name": data["name"]}
    try:
        with uow.session.begin_nested():
            uow.session.execute(insert(agencies).values(**agency, created_at=now_utc()))
    except IntegrityError as exc:
        raise Conflict("AGENCY_EXISTS", f"agency code {data['code']} is taken") from exc
    uow.add_event(
        "agency_registered", {"agency_id": agency["id"], **{k: agency[k] for k in ("code", "name")}}
    )
    return agency


def get_agency(uow, agency_id: str) -> dict:
    return agency_view(load_row(uow.session, agencies, agency_id, "AGENCY_NOT_FOUND", "agency"))


def list_agencies(uow, cursor: str | None = None, limit: int | None = None) -> dict:
    limit = page_limit(limit)
    query = select(agencies).order_by(agencies.c.code, agencies.c.id).limit(limit + 1)
    after = after_key(cursor, 2)
    if after:
        query = query.where(
            or_(
                agencies.c.code > after[0],
                and_(agencies.c.code == after[0], agencies.c.id > after[1]),
            )
        )
    rows = list(uow.session.execute(query).mappings())
    return page(rows, limit, lambda r: [r["code"], r["id"]], agency_view)


# -- services ----------------------------------------------------------------------------------


def service_view(row) -> dict:
    return {
        "id": row["id"],
        "agency_id": row["agency_id"],
        "code": row["code"],
        "name": row["name"],
        "fee_idr": row["fee_idr"],
        "sla_minutes": row["sla_minutes"],
        "prefix": row["prefix"],
        "requirements": list(row["requirements"] or []),
        "daily_quota": row["daily_quota"],
        "opening_hours": row.get("opening_hours"),
        "booking": row.get("booking"),
        "active": row["active"],
        "unplugged_at": iso(row.get("unplugged_at")),
    }


def _service_event(view: dict, version: int) -> dict:
    keys = ("agency_id", "code", "name", "fee_idr", "sla_minutes", "prefix", "active")
    return {
        "service_id": view["id"],
        **{k: view[k] for k in keys},
        "requirements": view["requirements"],
        "daily_quota": view["daily_quota"],
        "version": version,
    }


def parse_hhmm(value: str) -> time:
    hours, minutes = value.split(":")
    return time(int(hours), int(minutes))


def opening_periods(opening_hours: list[dict] | None) -> list[tuple[time, time]]:
    return [(parse_hhmm(p["opens"]), parse_hhmm(p["closes"])) for p in opening_hours or []]


def _check_booking_rules(values: dict) -> None:
    """Booking needs opening hours, and the hours must make sense (ordered, not overlapping)."""
    opening = values.get("opening_hours")
    if opening:
        try:
            booking_rules.generate_slots(
                date(2026, 1, 5), "Asia/Jakarta", opening_periods(opening), 60, 1
            )
        except ValueError as exc:
            raise invalid("opening_hours", str(exc)) from None
    if values.get("booking") and not opening:
        raise invalid("booking", "a service taking bookings needs opening_hours")


def plug_service(uow, agency_id: str, data: dict) -> dict:
    load_row(uow.session, agencies, agency_id, "AGENCY_NOT_FOUND", "agency")
    values = {
        "id": str(uuid.uuid4()),
        "agency_id": agency_id,
        "code": data["code"],
        "name": data["name"],
        "fee_idr": data["fee_idr"],
        "sla_minutes": data["sla_minutes"],
        "prefix": numbering.validate_prefix(data["prefix"]),
        "requirements": data.get("requirements") or [],
        "daily_quota": data.get("daily_quota"),
        "opening_hours": data.get("opening_hours"),
        "booking": data.get("booking"),
        "active": True,
        "version": 1,
    }
    _check_booking_rules(values)
    try:
        with uow.session.begin_nested():
            uow.session.execute(insert(services).values(**values, created_at=now_utc()))
    except IntegrityError as exc:
        raise Conflict("SERVICE_EXISTS", f"service code {data['code']} exists") from exc
    view = service_view(values)
    uow.add_event("service_plugged", _service_event(view, 1))
    return view


def _agency_service(session, agency_id: str, service_id: str) -> dict:
    row = session.execute(select(services).where(services.c.id == service_id)).mappings().first()
    if row is None or row["agency_id"] != agency_id:
        raise NotFound("SERVICE_NOT_FOUND", "no such service in this agency")
    return dict(row)


UPDATABLE = (
    "name",
    "fee_idr",
    "sla_minutes",
    "prefix",
    "requirements",
    "daily_quota",
    "opening_hours",
    "booking",
)


def update_service(uow, agency_id: str, service_id: str, data: dict) -> dict:
    """Change a service. Tickets already issued keep their number, fee and SLA (copied on issue);
    only tickets issued from now on see the change."""
    session = uow.session
    row = _agency_service(session, agency_id, service_id)
    if not row["active"]:
        raise Conflict("SERVICE_UNPLUGGED", "this service was unplugged")
    changes = {k: data[k] for k in UPDATABLE if k in data}
    merged = {**row, **changes}
    _check_booking_rules(merged)
    if changes:
        # the event is built from the row as this UPDATE left it (a concurrent change of other
        # fields committed first is in it), with the version this change gave it
        merged = dict(
            session.execute(
                update(services)
                .where(services.c.id == service_id)
                .values(**changes, version=services.c.version + 1, updated_at=now_utc())
                .returning(*services.c)
            )
            .mappings()
            .one()
        )
    view = service_view(merged)
    uow.add_event("service_updated", _service_event(view, merged["version"]))
    return view


def unplug_service(uow, agency_id: str, service_id: str) -> dict:
    """Take a service out of the catalogue: no new tickets or bookings, but every ticket already
    issued stays in its line, callable by the counters that serve it, until it ends."""
    session = uow.session
    row = _agency_service(session, agency_id, service_id)
    if not row["active"]:
        raise Conflict("SERVICE_UNPLUGGED", "this service was already unplugged")
    now = now_utc()
    session.execute(
        update(services)
        .where(services.c.id == service_id)
        .values(active=False, unplugged_at=now, updated_at=now)
    )
    waiting = session.execute(
        select(func.count())
        .select_from(tickets)
        .where(tickets.c.service_id == service_id, tickets.c.status == TicketStatus.WAITING.value)
    ).scalar_one()
    uow.add_event(
        "service_unplugged",
        {
            "service_id": service_id,
            "agency_id": agency_id,
            "unplugged_at": now,
            "waiting_tickets": waiting,
        },
    )
    return service_view({**row, "active": False, "unplugged_at": now})


def list_services(
    uow, agency_id: str | None = None, cursor: str | None = None, limit: int | None = None
) -> dict:
    limit = page_limit(limit)
    query = (
        select(services)
        .where(services.c.active.is_(True))
        .order_by(services.c.code, services.c.id)
        .limit(limit + 1)
    )
    if agency_id:
        query = query.where(services.c.agency_id == agency_id)
    after = after_key(cursor, 2)
    if after:
        query = query.where(
            or_(
                services.c.code > after[0],
                and_(services.c.code == after[0], services.c.id > after[1]),
            )
        )
    rows = [dict(r) for r in uow.session.execute(query).mappings()]
    return page(rows, limit, lambda r: [r["code"], r["id"]], service_view)


def get_service(uow, service_id: str) -> dict:
    return service_view(load_row(uow.session, services, service_id, "SERVICE_NOT_FOUND"))


# -- counters ----------------------------------------------------------------------------------


def counter_view(row) -> dict:
    return {
        "id": row["id"],
        "agency_id": row["agency_id"],
        "name": row["name"],
        "service_ids": list(row["service_ids"]),
        "is_open": row["is_open"],
    }


def _counter_event(view: dict) -> dict:
    keys = ("agency_id", "name", "service_ids", "is_open")
    return {"counter_id": view["id"], **{k: view[k] for k in keys}}


def _check_services(session, agency_id: str, service_ids: list[str]) -> None:
    owned = set(
        session.execute(
            select(services.c.id).where(
                services.c.agency_id == agency_id, services.c.active.is_(True)
            )
        ).scalars()
    )
    foreign = [s for s in service_ids if s not in owned]
    if foreign:
        raise invalid("service_ids", f"not an active service of this agency: {', '.join(foreign)}")


def add_counter(uow, agency_id: str, data: dict) -> dict:
    session = uow.session
    load_row(session, agencies, agency_id, "AGENCY_NOT_FOUND", "agency")
    _check_services(session, agency_id, data["service_ids"])
    values = {
        "id": str(uuid.uuid4()),
        "agency_id": agency_id,
        "name": data["name"],
        "service_ids": list(dict.fromkeys(data["service_ids"])),
        "is_open": data.get("is_open", True),
        "priority_streak": 0,
    }
    session.execute(insert(counters).values(**values, created_at=now_utc()))
    view = counter_view(values)
    uow.add_event("counter_opened" if view["is_open"] else "counter_closed", _counter_event(view))
    return view


def update_counter(uow, agency_id: str, counter_id: str, data: dict) -> dict:
    """Rename, re-assign services, open or close a counter.

    Closing a counter loses nothing: waiting tickets belong to their service's line, not to a
    counter, and a ticket already called or in service there can still be started, completed,
    transferred or marked a no-show. A closed counter only stops calling."""
    session = uow.session
    row = load_row(session, counters, counter_id, "COUNTER_NOT_FOUND", "counter")
    if row["agency_id"] != agency_id:
        raise NotFound("COUNTER_NOT_FOUND", "no such counter in this agency")
    changes: dict = {}
    if "name" in data:
        changes["name"] = data["name"]
    if "service_ids" in data:
        _check_services(session, agency_id, data["service_ids"])
        changes["service_ids"] = list(dict.fromkeys(data["service_ids"]))
    if "is_open" in data:
        changes["is_open"] = data["is_open"]
    if changes:
        session.execute(
            update(counters)
            .where(counters.c.id == counter_id)
            .values(**changes, updated_at=now_utc())
        )
    view = counter_view({**row, **changes})
    if "is_open" in changes and changes["is_open"] != row["is_open"]:
        event = "counter_opened" if view["is_open"] else "counter_closed"
    else:
        event = "counter_updated"
    uow.add_event(event, _counter_event(view))
    return view


HELD = (TicketStatus.CALLED.value, TicketStatus.SERVING.value)


def set_counter_open(uow, counter_id: str, is_open: bool, actor: dict | None) -> dict:
    """The counter's own officer opens or closes it (the agency admin's ``update_counter`` does
    the same among other changes).

    An officer does not close on a citizen standing at the desk: while the counter holds a
    called or served ticket, closing is refused (409 ``COUNTER_BUSY``) until the officer
    completes, transfers or marks it a no-show, so nobody is left at a dark counter. The agency
    admin's PATCH still closes it (a supervisor's override: the held ticket can be finished)."""
    session = uow.session
    row = load_row(session, counters, counter_id, "COUNTER_NOT_FOUND", "counter")
    check_agency(actor, row["agency_id"])
    if not is_open:
        held = session.execute(
            select(tickets.c.number)
            .where(tickets.c.counter_id == counter_id, tickets.c.status.in_(HELD))
            .order_by(tickets.c.last_called_at)
        ).scalars()
        numbers = list(held)
        if numbers:
            raise Conflict(
                "COUNTER_BUSY",
                "this counter still holds a citizen: complete, transfer or mark a no-show first",
                {"tickets": numbers},
            )
    return update_counter(uow, row["agency_id"], counter_id, {"is_open": is_open})


def list_counters(uow, agency_id: str, cursor: str | None = None, limit: int | None = None) -> dict:
    limit = page_limit(limit)
    c = counters.c
    query = select(counters).where(c.agency_id == agency_id).order_by(c.name, c.id).limit(limit + 1)
    after = after_key(cursor, 2)
    if after:
        query = query.where(or_(c.name > after[0], and_(c.name == after[0], c.id > after[1])))
    rows = list(uow.session.execute(query).mappings())
    return page(rows, limit, lambda r: [r["name"], r["id"]], counter_view)
