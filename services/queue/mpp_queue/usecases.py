"""Queue use cases: each takes the unit of work and plain values, applies the domain rules and
stores the state change together with the events it implies. No nameko here."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.exc import IntegrityError

from mpp_chassis.db import next_in_sequence
from mpp_contracts.errors import Conflict, Forbidden, NotFound, ValidationFailed
from mpp_queue.adapters.tables import agencies, counters, services, ticket_sequences, tickets
from mpp_queue.domain import announce, calling, eta, nik, numbering
from mpp_queue.domain.tickets import Action, InvalidTransition, TicketState, TicketStatus, apply


@dataclass(frozen=True)
class Settings:
    """The queue's tunables, read from config once per container."""

    mall_timezone: str = "Asia/Jakarta"
    nik_hash_key: str = "change-me"
    no_show_after_calls: int = 3
    max_priority_streak: int = 3


def now_utc() -> datetime:
    return datetime.now(UTC)


def _row(session, table, key: str, code: str) -> Any:
    row = session.execute(select(table).where(table.c.id == key)).mappings().first()
    if row is None:
        raise NotFound(code, f"{table.name[:-1]} {key} not found")
    return row


# -- catalogue ---------------------------------------------------------------------------------


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


def list_agencies(uow) -> list[dict]:
    rows = uow.session.execute(select(agencies).order_by(agencies.c.code)).mappings()
    return [agency_view(r) for r in rows]


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
        "active": row["active"],
    }


def _service_event(view: dict) -> dict:
    return {
        "service_id": view["id"],
        **{
            k: view[k]
            for k in ("agency_id", "code", "name", "fee_idr", "sla_minutes", "prefix", "active")
        },
    }


def plug_service(uow, agency_id: str, data: dict) -> dict:
    _row(uow.session, agencies, agency_id, "AGENCY_NOT_FOUND")
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
        "active": True,
    }
    try:
        with uow.session.begin_nested():
            uow.session.execute(insert(services).values(**values, created_at=now_utc()))
    except IntegrityError as exc:
        raise Conflict("SERVICE_EXISTS", f"service code {data['code']} exists") from exc
    view = service_view(values)
    uow.add_event("service_plugged", _service_event(view))
    return view


def list_services(uow, agency_id: str | None = None) -> list[dict]:
    query = select(services).where(services.c.active.is_(True)).order_by(services.c.code)
    if agency_id:
        query = query.where(services.c.agency_id == agency_id)
    return [service_view(r) for r in uow.session.execute(query).mappings()]


def counter_view(row) -> dict:
    return {
        "id": row["id"],
        "agency_id": row["agency_id"],
        "name": row["name"],
        "service_ids": list(row["service_ids"]),
        "is_open": row["is_open"],
    }


def add_counter(uow, agency_id: str, data: dict) -> dict:
    _row(uow.session, agencies, agency_id, "AGENCY_NOT_FOUND")
    owned = set(
        uow.session.execute(
            select(services.c.id).where(services.c.agency_id == agency_id)
        ).scalars()
    )
    foreign = [s for s in data["service_ids"] if s not in owned]
    if foreign:
        raise ValidationFailed(
            "VALIDATION_FAILED",
            "invalid fields",
            {"service_ids": [f"not a service of this agency: {', '.join(foreign)}"]},
        )
    values = {
        "id": str(uuid.uuid4()),
        "agency_id": agency_id,
        "name": data["name"],
        "service_ids": list(data["service_ids"]),
        "is_open": data.get("is_open", True),
        "priority_streak": 0,
    }
    uow.session.execute(insert(counters).values(**values, created_at=now_utc()))
    view = counter_view(values)
    event = "counter_opened" if view["is_open"] else "counter_closed"
    uow.add_event(
        event,
        {"counter_id": view["id"], **{k: view[k] for k in ("agency_id", "name", "service_ids")}},
    )
    return view


# -- tickets -----------------------------------------------------------------------------------


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


def take_ticket(uow, settings: Settings, data: dict) -> dict:
    session = uow.session
    service = (
        session.execute(select(services).where(services.c.id == data["service_id"]))
        .mappings()
        .first()
    )
    if service is None or not service["active"]:
        raise NotFound("SERVICE_NOT_FOUND", "no such service in the mall's catalogue")
    now = now_utc()
    day = numbering.mall_day(now, settings.mall_timezone)
    nik_hash = nik_last4 = None
    if data.get("nik"):
        try:
            nik.validate_nik(data["nik"], today=day)
        except nik.InvalidNik as exc:
            raise ValidationFailed(
                "VALIDATION_FAILED", "invalid fields", {"nik": [f"invalid NIK ({exc.reason})"]}
            ) from None
        nik_hash = nik.nik_hash(data["nik"], settings.nik_hash_key)
        nik_last4 = data["nik"][-4:]
    if service["daily_quota"]:
        issued = session.execute(
            select(func.count())
            .select_from(tickets)
            .where(tickets.c.service_id == service["id"], tickets.c.day == day)
        ).scalar_one()
        if issued >= service["daily_quota"]:
            raise Conflict("QUOTA_EXHAUSTED", "today's quota for this service is used up")
    seq = next_in_sequence(session, ticket_sequences, {"prefix": service["prefix"], "day": day})
    row = {
        "id": str(uuid.uuid4()),
        "journey_id": str(uuid.uuid4()),
        "number": numbering.format_number(service["prefix"], seq),
        "day": day,
        "agency_id": service["agency_id"],
        "service_id": service["id"],
        "status": TicketStatus.WAITING.value,
        "priority": data.get("priority"),
        "nik_hash": nik_hash,
        "nik_last4": nik_last4,
        "phone": data.get("phone"),
        "issued_at": now,
        "queued_at": now,
        "call_count": 0,
        "fee_idr": service["fee_idr"],
    }
    session.execute(insert(tickets).values(**row))
    uow.add_event(
        "ticket_issued",
        {**ticket_event({**row, "service_code": service["code"]}), "booking_id": None},
    )
    return ticket_view(
        session, settings, {**row, "service_code": service["code"], "service_name": service["name"]}
    )


def _load_ticket(session, ticket_id: str):
    row = (
        session.execute(
            select(
                tickets,
                services.c.code.label("service_code"),
                services.c.name.label("service_name"),
                services.c.sla_minutes,
            )
            .join(services, services.c.id == tickets.c.service_id)
            .where(tickets.c.id == ticket_id)
        )
        .mappings()
        .first()
    )
    if row is None:
        raise NotFound("TICKET_NOT_FOUND", "no such ticket")
    return dict(row)


def _candidates(session, service_ids: list[str], day) -> list[calling.Candidate]:
    rows = session.execute(
        select(tickets.c.id, tickets.c.service_id, tickets.c.queued_at, tickets.c.priority).where(
            tickets.c.service_id.in_(service_ids),
            tickets.c.status == TicketStatus.WAITING.value,
            tickets.c.day == day,
        )
    ).all()
    return [
        calling.Candidate(
            ticket_id=r.id,
            service_id=r.service_id,
            queued_at=r.queued_at,
            priority=r.priority,
        )
        for r in rows
    ]


def ticket_view(session, settings: Settings, row: dict) -> dict:
    position = wait = None
    if row["status"] == TicketStatus.WAITING.value:
        ahead = session.execute(
            select(func.count())
            .select_from(tickets)
            .where(
                tickets.c.service_id == row["service_id"],
                tickets.c.status == TicketStatus.WAITING.value,
                tickets.c.day == row["day"],
                tickets.c.queued_at < row["queued_at"],
            )
        ).scalar_one()
        position = ahead + 1
        open_counters = sum(
            1
            for ids in session.execute(
                select(counters.c.service_ids).where(
                    counters.c.is_open.is_(True), counters.c.agency_id == row["agency_id"]
                )
            ).scalars()
            if row["service_id"] in ids
        )
        wait = eta.estimate_wait_minutes(ahead, [], open_counters)
    payment = None
    if row.get("payment_id"):
        payment = {
            "id": row["payment_id"],
            "status": row["payment_status"],
            "href": f"/v1/payments/{row['payment_id']}",
        }
    rating = None
    if row.get("rating_token"):
        rating = {
            "token": row["rating_token"],
            "expires_at": _iso(row["rating_expires_at"]),
            "href": "/v1/ratings",
        }
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
        "issued_at": _iso(row["issued_at"]),
        "called_at": _iso(row.get("called_at")),
        "counter_id": row.get("counter_id"),
        "position": position,
        "estimated_wait_minutes": wait,
        "fee_idr": row["fee_idr"],
        "payment": payment,
        "rating": rating,
    }


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def get_ticket(uow, settings: Settings, ticket_id: str) -> dict:
    return ticket_view(uow.session, settings, _load_ticket(uow.session, ticket_id))


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


def _counter_for(session, counter_id: str, actor: dict | None):
    counter = _row(session, counters, counter_id, "COUNTER_NOT_FOUND")
    _check_agency(actor, counter["agency_id"])
    return counter


def _check_agency(actor: dict | None, agency_id: str) -> None:
    if actor and actor.get("role") != "mall_admin" and actor.get("agency_id") != agency_id:
        raise Forbidden("FORBIDDEN", "this key belongs to another agency")


def call_next(uow, settings: Settings, counter_id: str, actor: dict | None) -> dict:
    """Call the next eligible ticket at a counter (the rule is in ``domain.calling``).

    The claim is optimistic: ``UPDATE … WHERE status='waiting'``; if another counter took the same
    ticket in the meantime the update touches no row and we choose again.
    """
    session = uow.session
    counter = _counter_for(session, counter_id, actor)
    if not counter["is_open"]:
        raise Conflict("COUNTER_CLOSED", "this counter is closed")
    now = now_utc()
    day = numbering.mall_day(now, settings.mall_timezone)
    candidates = _candidates(session, list(counter["service_ids"]), day)
    streak = counter["priority_streak"]
    while candidates:
        choice = calling.choose_next(
            candidates,
            now=now,
            priority_streak=streak,
            max_priority_streak=settings.max_priority_streak,
        )
        ticket_id = choice.candidate.ticket_id
        state = apply(TicketState(), Action.CALL, now, counter_id=counter_id)
        claimed = session.execute(
            update(tickets)
            .where(tickets.c.id == ticket_id, tickets.c.status == TicketStatus.WAITING.value)
            .values(
                status=state.status.value,
                call_count=state.call_count,
                called_at=now,
                last_called_at=now,
                counter_id=counter_id,
                officer_id=(actor or {}).get("key_id"),
            )
        ).rowcount
        if claimed:
            session.execute(
                update(counters)
                .where(counters.c.id == counter_id)
                .values(priority_streak=choice.priority_streak)
            )
            row = _load_ticket(session, ticket_id)
            _emit_call(uow, "ticket_called", row, counter)
            return ticket_view(session, settings, row)
        candidates = [c for c in candidates if c.ticket_id != ticket_id]
    raise NotFound("NO_TICKET_WAITING", "no ticket is waiting for this counter's services")


def _emit_call(uow, event_type: str, row: dict, counter) -> None:
    uow.add_event(
        event_type,
        {
            **ticket_event(row),
            "counter_id": counter["id"],
            "counter_name": counter["name"],
            "call_count": row["call_count"],
            "called_at": row["last_called_at"],
            "announcement": announce.announcement(row["number"], counter["name"]),
        },
    )


ACTIONS = {
    "recall": Action.RECALL,
    "start": Action.START,
    "complete": Action.COMPLETE,
    "no-show": Action.NO_SHOW,
    "cancel": Action.CANCEL,
}


def ticket_action(
    uow, settings: Settings, ticket_id: str, action: str, data: dict, actor: dict | None
) -> dict:
    if action not in ACTIONS:
        raise NotFound("ACTION_NOT_FOUND", f"unknown ticket action {action}")
    session = uow.session
    row = _load_ticket(session, ticket_id)
    _check_agency(actor, row["agency_id"])
    now = now_utc()
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
    changed = session.execute(
        update(tickets)
        .where(
            tickets.c.id == ticket_id,
            tickets.c.status == row["status"],
            tickets.c.call_count == row["call_count"],
        )
        .values(
            status=state.status.value,
            call_count=state.call_count,
            last_called_at=state.last_called_at,
            started_at=state.started_at,
            completed_at=state.completed_at,
            ended_at=state.ended_at,
        )
    ).rowcount
    if not changed:
        raise Conflict("CONCURRENT_UPDATE", "the ticket changed meanwhile; reload and retry")
    row = _load_ticket(session, ticket_id)
    base = ticket_event(row)
    if action == "recall":
        counter = _row(session, counters, row["counter_id"], "COUNTER_NOT_FOUND")
        _emit_call(uow, "ticket_recalled", row, counter)
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
    return ticket_view(session, settings, row)


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
