"""Complaints: opening, answering, escalating past their deadlines, listing."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import and_, insert, or_, select, update

from mpp_contracts.errors import Conflict, NotFound
from mpp_contracts.pagination import DEFAULT_LIMIT, decode_cursor, page
from mpp_contracts.scope import require_agency_scope
from mpp_rating.adapters.tables import (
    complaint_responses,
    complaints,
)
from mpp_rating.domain import complaints as complaint_rules
from mpp_rating.usecases.common import iso, now_utc


def require_agency(actor: dict | None, agency_id: str) -> None:
    """Only the mall admin or an agency admin of this agency may act on its complaints."""
    require_agency_scope(
        actor,
        agency_id,
        ("agency_admin",),
        code="OUT_OF_SCOPE",
        message="this complaint belongs to another agency",
        anonymous="an agency key is required",
    )


def _complaint_event(uow, event_type: str, row: dict, now: datetime) -> None:
    uow.add_event(
        event_type,
        {
            "complaint_id": row["id"],
            "agency_id": row["agency_id"],
            "rating_id": row["rating_id"],
            "status": row["status"],
            "occurred_at": now,
            "ticket_id": row["ticket_id"],
            "service_id": row["service_id"],
            "reason": row["reason"],
            "disputed": row["disputed"],
            "first_response_due": row["first_response_due"],
            "resolution_due": row["resolution_due"],
            "escalated_for": row["escalated_for"],
        },
    )


def open_complaint(uow, rating: dict, reason: str, now: datetime) -> str:
    state = complaint_rules.open_complaint(now)
    row = {
        "id": str(uuid.uuid4()),
        "rating_id": rating["id"],
        "ticket_id": rating["ticket_id"],
        "agency_id": rating["agency_id"],
        "service_id": rating["service_id"],
        "reason": reason,
        "stars": rating["stars"],
        "comment": rating["comment"],
        "status": str(state.status),
        "disputed": False,
        "opened_at": now,
        "first_response_due": complaint_rules.first_response_due(now),
        "resolution_due": state.closing_due,
        "escalated_for": None,
    }
    uow.session.execute(insert(complaints).values(**row))
    _complaint_event(uow, "complaint_opened", row, now)
    return row["id"]


def _complaint_state(row) -> complaint_rules.ComplaintState:
    return complaint_rules.ComplaintState(
        opened_at=row["opened_at"],
        status=complaint_rules.ComplaintStatus(row["status"]),
        disputed=row["disputed"],
        responded_at=row["responded_at"],
        resolved_at=row["resolved_at"],
        disputed_at=row["disputed_at"],
        escalated_at=row["escalated_at"],
        escalated_for=row["escalated_for"],
    )


def _store_state(uow, row: dict, state: complaint_rules.ComplaintState) -> dict:
    """Write a new state only if nobody changed the complaint meanwhile (else 409)."""
    values = {
        "status": str(state.status),
        "disputed": state.disputed,
        "responded_at": state.responded_at,
        "resolved_at": state.resolved_at,
        "disputed_at": state.disputed_at,
        "escalated_at": state.escalated_at,
        "escalated_for": state.escalated_for,
        "resolution_due": state.closing_due,
    }
    changed = uow.session.execute(
        update(complaints)
        .where(complaints.c.id == row["id"], complaints.c.status == row["status"])
        .values(**values)
    ).rowcount
    if not changed:
        raise Conflict("CONCURRENT_UPDATE", "the complaint changed meanwhile; reload it")
    return {**row, **values}


def respond_to_complaint(
    uow, complaint_id: str, data: dict, actor: dict | None, now: datetime | None = None
) -> dict:
    """An agency answers: the first answer moves open → responded; ``dispute`` marks it a dispute
    (14 days to resolve instead of 5); ``resolve`` closes it."""
    session = uow.session
    row = session.execute(select(complaints).where(complaints.c.id == complaint_id)).mappings()
    row = row.first()
    if row is None:
        raise NotFound("COMPLAINT_NOT_FOUND", "no such complaint")
    row = dict(row)
    require_agency(actor, row["agency_id"])
    now = now or now_utc()
    state = _complaint_state(row)
    try:
        if state.status is complaint_rules.ComplaintStatus.OPEN:
            state = complaint_rules.apply(state, "respond", now)
        elif state.status in complaint_rules.TERMINAL:
            raise complaint_rules.InvalidTransition(state.status, "respond")
        if data.get("dispute"):
            state = complaint_rules.apply(state, "dispute", now)
        if data.get("resolve"):
            state = complaint_rules.apply(state, "resolve", now)
    except complaint_rules.InvalidTransition as exc:
        raise Conflict("INVALID_TRANSITION", str(exc), {"status": row["status"]}) from None
    changed = (state.status, state.disputed) != (row["status"], row["disputed"])
    row = _store_state(uow, row, state) if changed else row
    session.execute(
        insert(complaint_responses).values(
            id=str(uuid.uuid4()),
            complaint_id=complaint_id,
            message=data["message"],
            resolves=bool(data.get("resolve")),
            responder_key_id=(actor or {}).get("key_id"),
            created_at=now,
        )
    )
    _complaint_event(uow, "complaint_responded", {**row, "status": "responded"}, now)
    if row["status"] == complaint_rules.ComplaintStatus.RESOLVED:
        _complaint_event(uow, "complaint_resolved", row, now)
    return _complaint_body(row, _responses(uow, [complaint_id])[complaint_id])


def escalate_overdue(uow, now: datetime | None = None) -> list[str]:
    """Escalate every complaint past a deadline (run by the timer; safe to run twice or on two
    replicas: the domain refuses an early escalation and the update is conditional)."""
    now = now or now_utc()
    candidates = uow.session.execute(
        select(complaints).where(
            complaints.c.status.in_(["open", "responded"]),
            or_(
                and_(complaints.c.status == "open", complaints.c.first_response_due < now),
                complaints.c.resolution_due < now,
            ),
        )
    ).mappings()
    escalated = []
    for row in [dict(r) for r in candidates]:
        try:
            state = complaint_rules.apply(_complaint_state(row), "escalate", now)
            row = _store_state(uow, row, state)
        except (complaint_rules.InvalidTransition, Conflict):
            continue
        _complaint_event(uow, "complaint_escalated", row, now)
        escalated.append(row["id"])
    return escalated


def _responses(uow, ids: list[str]) -> dict[str, list[dict]]:
    found: dict[str, list[dict]] = {i: [] for i in ids}
    if not ids:
        return found
    rows = uow.session.execute(
        select(complaint_responses)
        .where(complaint_responses.c.complaint_id.in_(ids))
        .order_by(complaint_responses.c.created_at, complaint_responses.c.id)
    ).mappings()
    for r in rows:
        found[r["complaint_id"]].append(
            {
                "message": r["message"],
                "resolves": r["resolves"],
                "created_at": iso(r["created_at"]),
            }
        )
    return found


def _complaint_body(row: dict, responses: list[dict]) -> dict:
    return {
        "id": row["id"],
        "agency_id": row["agency_id"],
        "service_id": row["service_id"],
        "ticket_id": row["ticket_id"],
        "rating_id": row["rating_id"],
        "reason": row["reason"],
        "stars": row["stars"],
        "comment": row["comment"],
        "status": row["status"],
        "disputed": row["disputed"],
        "opened_at": iso(row["opened_at"]),
        "first_response_due": iso(row["first_response_due"]),
        "resolution_due": iso(row["resolution_due"]),
        "responded_at": iso(row["responded_at"]),
        "resolved_at": iso(row["resolved_at"]),
        "escalated_at": iso(row["escalated_at"]),
        "escalated_for": row["escalated_for"],
        "responses": responses,
    }


def list_complaints(uow, agency_id: str, query: dict, actor: dict | None) -> dict:
    """An agency's complaints, newest first, keyset-paginated (``cursor`` from the last page)."""
    require_agency(actor, agency_id)
    conditions = [complaints.c.agency_id == agency_id]
    if query.get("status"):
        conditions.append(complaints.c.status == query["status"])
    if query.get("cursor"):
        opened, ident = decode_cursor(query["cursor"], (datetime, str))
        conditions.append(
            or_(
                complaints.c.opened_at < opened,
                and_(complaints.c.opened_at == opened, complaints.c.id < ident),
            )
        )
    limit = query.get("limit") or DEFAULT_LIMIT
    rows = [
        dict(r)
        for r in uow.session.execute(
            select(complaints)
            .where(*conditions)
            .order_by(complaints.c.opened_at.desc(), complaints.c.id.desc())
            .limit(limit + 1)
        ).mappings()
    ]
    more = len(rows) > limit
    rows = rows[:limit]
    responses = _responses(uow, [r["id"] for r in rows])
    return page(
        [_complaint_body(r, responses[r["id"]]) for r in rows],
        [rows[-1]["opened_at"].isoformat(), rows[-1]["id"]] if more else None,
    )
