"""Issuing tickets: a service's next number, take-ticket (alone or grouped) and its replay by
request key. The daily walk-in places it claims are in :mod:`.places`."""

from __future__ import annotations

import functools
import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam, func, insert, literal, select

from mpp_chassis.sequences import next_in_sequence
from mpp_contracts.errors import NotFound
from mpp_queue.adapters.tables import (
    services,
    ticket_sequences,
    tickets,
)
from mpp_queue.domain import numbering, sla
from mpp_queue.domain.tickets import (
    TicketStatus,
)

from .common import Settings, citizen_nik, now_utc
from .places import PLACE_LOCK_CLASS, RETURN_PLACE, claim_place, place_key
from .tickets import load_ticket, ticket_event, ticket_view

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
    so a later catalogue change never rewrites it. On PostgreSQL the ticket and its event are
    one statement (a booking's check-in, a transfer).
    """
    session = uow.session
    day = numbering.mall_day(now, settings.mall_timezone)
    if seq is None:
        seq = next_in_sequence(session, ticket_sequences, {"prefix": service["prefix"], "day": day})
    row = _ticket_row(
        service,
        now,
        day,
        seq,
        priority=priority,
        nik_hash=nik_hash,
        nik_last4=nik_last4,
        phone=phone,
        journey_id=journey_id,
        queued_at=queued_at,
        booking_id=booking_id,
        booked_slot_start=booked_slot_start,
        transferred_from=transferred_from,
        request_key=request_key,
    )
    uow.execute_with_event(
        _insert_ticket_values(tuple(row)), row, "ticket_issued", _issued_payload(row, service)
    )
    return _issued_view(row, service)


def _ticket_row(service: dict, now: datetime, day, seq: int, **fields) -> dict:
    """A new waiting ticket's row: the service's fee and SLA copied, so a later catalogue change
    never rewrites it."""
    return {
        "id": str(uuid.uuid4()),
        "journey_id": fields["journey_id"] or str(uuid.uuid4()),
        "number": numbering.format_number(service["prefix"], seq),
        "day": day,
        "agency_id": service["agency_id"],
        "service_id": service["id"],
        "status": TicketStatus.WAITING.value,
        "priority": fields["priority"],
        "nik_hash": fields["nik_hash"],
        "nik_last4": fields["nik_last4"],
        "phone": fields["phone"],
        "issued_at": now,
        "queued_at": fields["queued_at"] or now,
        "call_count": 0,
        "fee_idr": service["fee_idr"],
        "booking_id": fields["booking_id"],
        "booked_slot_start": fields["booked_slot_start"],
        "transferred_from": fields["transferred_from"],
        "sla_minutes": service["sla_minutes"],
        "sla_deadline": sla.sla_deadline(now, service["sla_minutes"]),
        "request_key": fields["request_key"],
    }


def _issued_payload(row: dict, service: dict) -> dict:
    return {
        **ticket_event({**row, "service_code": service["code"]}),
        "booking_id": row["booking_id"],
        "transferred_from": row["transferred_from"],
        "queued_at": row["queued_at"],
    }


def _issued_view(row: dict, service: dict) -> dict:
    return {**row, "service_code": service["code"], "service_name": service["name"]}


@dataclass
class _Take:
    """A take-ticket between its checks and its insert: its place and number are claimed."""

    uow: object
    service: dict
    row: dict
    apart: bool


# On PostgreSQL take-ticket's first round trip does three things: reads the service, looks up a
# keyed request's earlier ticket and takes the line's place lock (shared, until commit: see
# reconcile_quotas). Apart they cost three round trips; the lock is harmless when the service is
# unknown or the request a replay.
_ISSUED_FOR_KEY = (
    select(tickets.c.id).where(tickets.c.request_key == bindparam("request_key")).scalar_subquery()
)
_TAKE_PRELUDE_PG = select(
    services,
    _ISSUED_FOR_KEY.label("issued_id"),
    func.pg_advisory_xact_lock_shared(PLACE_LOCK_CLASS, func.hashtext(bindparam("place"))).label(
        "place_held"
    ),
).select_from(
    select(literal(1).label("one"))
    .subquery("one")
    .outerjoin(services, services.c.id == bindparam("service_id"))
)


def _begin_take(
    uow, settings: Settings, data: dict, now: datetime, request_key: str | None, *, replay: bool
) -> dict | _Take:
    """Take-ticket up to its insert: the checks and the claimed place, or (``replay``) the view
    of the ticket a keyed request already issued."""
    session = uow.session
    day = numbering.mall_day(now, settings.mall_timezone)
    postgres = session.get_bind().dialect.name == "postgresql"
    if postgres:
        found = (
            session.execute(
                _TAKE_PRELUDE_PG,
                {
                    "service_id": data["service_id"],
                    "request_key": request_key if replay else None,
                    "place": place_key(data["service_id"], day),
                },
            )
            .mappings()
            .one()
        )
        if found["issued_id"] is not None:
            return ticket_view(session, settings, load_ticket(session, found["issued_id"]), now)
        if found["id"] is None or not found["active"]:
            raise NotFound("SERVICE_NOT_FOUND", "no such service in the mall's catalogue")
        service = {column.name: found[column.name] for column in services.c}
    else:
        if replay and request_key is not None:
            issued = ticket_for_request(session, settings, request_key, now)
            if issued is not None:
                return issued
        service = active_service(session, data["service_id"])
    nik_hash, nik_last4 = citizen_nik(data.get("nik"), settings, day)
    seq, apart = claim_place(uow, service, day, place_held=postgres)
    row = _ticket_row(
        service,
        now,
        day,
        seq,
        priority=data.get("priority"),
        nik_hash=nik_hash,
        nik_last4=nik_last4,
        phone=data.get("phone"),
        journey_id=None,
        queued_at=None,
        booking_id=None,
        booked_slot_start=None,
        transferred_from=None,
        request_key=request_key,
    )
    return _Take(uow, service, row, apart)


def _return_place(take: _Take) -> None:
    """A claimed place whose ticket was not stored goes back (its number stays unused)."""
    if take.apart:
        take.uow.execute_now(
            RETURN_PLACE,
            {"place_service_id": take.service["id"], "place_day": take.row["day"]},
        )


@functools.cache
def _insert_ticket_values(keys: tuple[str, ...]):
    """``INSERT INTO tickets`` with a bound parameter per key, built once: the form a CTE needs
    (:meth:`UnitOfWork.execute_with_event`)."""
    return insert(tickets).values({k: bindparam(k, type_=tickets.c[k].type) for k in keys})


def _store_take(take: _Take) -> None:
    """Insert the ticket and its ``ticket_issued`` event (one statement on PostgreSQL)."""
    try:
        take.uow.execute_with_event(
            _insert_ticket_values(tuple(take.row)),
            take.row,
            "ticket_issued",
            _issued_payload(take.row, take.service),
        )
    except Exception:
        _return_place(take)
        raise


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
    take = _begin_take(uow, settings, data, now or now_utc(), request_key, replay=False)
    _store_take(take)
    return _issued_view(take.row, take.service)


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
    begun = _begin_take(uow, settings, data, now, request_key, replay=True)
    if isinstance(begun, dict):
        return begun
    _store_take(begun)
    return ticket_view(uow.session, settings, _issued_view(begun.row, begun.service), now)
