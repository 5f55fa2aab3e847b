"""Rating use cases: invitations from ticket and payment facts, one-time submission, summaries."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, time
from zoneinfo import ZoneInfo

from sqlalchemy import func, insert, select, update
from sqlalchemy.exc import IntegrityError

from mpp_contracts.errors import Conflict, NotFound, ValidationFailed
from mpp_rating.adapters.tables import invitations, ratings
from mpp_rating.domain import ikm
from mpp_rating.domain import invitations as rules
from mpp_rating.domain.aggregates import Aggregate, Rating


@dataclass(frozen=True)
class Settings:
    mall_timezone: str = "Asia/Jakarta"
    token_days: int = 7


def now_utc() -> datetime:
    return datetime.now(UTC)


def _state(row) -> rules.InvitationState:
    return rules.InvitationState(
        completed=row["completed"],
        fee_idr=row["fee_idr"],
        paid=row["paid"],
        invited=row["token"] is not None,
    )


def _record(uow, ticket_id: str, insert_values: dict, update_values: dict) -> dict:
    """Upsert the facts known about one ticket's invitation and return the row."""
    session = uow.session
    changed = session.execute(
        update(invitations).where(invitations.c.ticket_id == ticket_id).values(**update_values)
    ).rowcount
    if not changed:
        try:
            with session.begin_nested():
                session.execute(insert(invitations).values(ticket_id=ticket_id, **insert_values))
        except IntegrityError:  # the other fact arrived at the same instant
            session.execute(
                update(invitations)
                .where(invitations.c.ticket_id == ticket_id)
                .values(**update_values)
            )
    return dict(
        session.execute(select(invitations).where(invitations.c.ticket_id == ticket_id))
        .mappings()
        .one()
    )


def _maybe_invite(uow, settings: Settings, row: dict) -> None:
    if not rules.ready_to_invite(_state(row)):
        return
    now = now_utc()
    token = rules.new_token()
    expires = rules.token_expires_at(now, settings.token_days)
    issued = uow.session.execute(
        update(invitations)
        .where(invitations.c.ticket_id == row["ticket_id"], invitations.c.token.is_(None))
        .values(token=token, expires_at=expires)
    ).rowcount
    if issued:
        uow.add_event(
            "rating_invited",
            {
                "ticket_id": row["ticket_id"],
                "agency_id": row["agency_id"],
                "service_id": row["service_id"],
                "token": token,
                "expires_at": expires,
            },
        )


def on_ticket_completed(uow, settings: Settings, payload: dict) -> None:
    facts = {
        "agency_id": payload["agency_id"],
        "service_id": payload["service_id"],
        "counter_id": payload["counter_id"],
        "officer_id": payload["officer_id"],
        "fee_idr": payload["fee_idr"],
        "completed": True,
        "completed_at": payload["completed_at"],
    }
    row = _record(uow, payload["ticket_id"], {**facts, "paid": False}, facts)
    _maybe_invite(uow, settings, row)


def on_payment_succeeded(uow, settings: Settings, payload: dict) -> None:
    row = _record(
        uow,
        payload["ticket_id"],
        {
            "agency_id": payload["agency_id"],
            "service_id": payload["service_id"],
            "completed": False,
            "paid": True,
        },
        {"paid": True},
    )
    _maybe_invite(uow, settings, row)


def submit_rating(uow, settings: Settings, data: dict) -> dict:
    session = uow.session
    row = (
        session.execute(select(invitations).where(invitations.c.token == data["token"]))
        .mappings()
        .first()
    )
    if row is None:
        raise NotFound("TOKEN_NOT_FOUND", "no rating invitation with this token")
    now = now_utc()
    status = rules.token_usable(row["expires_at"], row["used_at"], now)
    if status != "ok":
        raise Conflict(f"TOKEN_{status.upper()}", f"this rating token is {status}")
    used = session.execute(
        update(invitations)
        .where(invitations.c.ticket_id == row["ticket_id"], invitations.c.used_at.is_(None))
        .values(used_at=now)
    ).rowcount
    if not used:  # another submission with the same token won the race
        raise Conflict("TOKEN_USED", "this rating token is used")
    from mpp_rating.domain.validation import validate_submission

    problems = validate_submission(data["stars"], data.get("answers") or {}, data.get("comment"))
    if problems:
        raise ValidationFailed(
            "VALIDATION_FAILED", "invalid fields", {p.field: [p.message] for p in problems}
        )
    rating = {
        "id": str(uuid.uuid4()),
        "ticket_id": row["ticket_id"],
        "agency_id": row["agency_id"],
        "service_id": row["service_id"],
        "counter_id": row["counter_id"],
        "officer_id": row["officer_id"],
        "stars": data["stars"],
        "answers": dict(data.get("answers") or {}),
        "comment": data.get("comment"),
        "submitted_at": now,
    }
    session.execute(insert(ratings).values(**rating))
    uow.add_event(
        "rating_submitted",
        {
            "rating_id": rating["id"],
            **{
                k: rating[k]
                for k in (
                    "ticket_id",
                    "agency_id",
                    "service_id",
                    "counter_id",
                    "officer_id",
                    "stars",
                    "answers",
                    "submitted_at",
                )
            },
        },
    )
    return {
        "id": rating["id"],
        "ticket_id": rating["ticket_id"],
        "stars": rating["stars"],
        "submitted_at": now.isoformat(),
    }


def _range(settings: Settings, start: str | None, end: str | None):
    tz = ZoneInfo(settings.mall_timezone)
    lo = datetime.combine(datetime.fromisoformat(start).date(), time.min, tz) if start else None
    hi = datetime.combine(datetime.fromisoformat(end).date(), time.max, tz) if end else None
    return lo, hi


def _decimal(value) -> str | None:
    return None if value is None else str(value)


def summary(uow, settings: Settings, filters: dict) -> dict:
    """Counts, stars, CSAT and IKM for a filter, computed from the raw ratings."""
    try:
        lo, hi = _range(settings, filters.get("from"), filters.get("to"))
    except ValueError:
        raise ValidationFailed(
            "VALIDATION_FAILED", "invalid fields", {"from/to": ["must be ISO dates (YYYY-MM-DD)"]}
        ) from None
    conditions = []
    for key, column in (
        ("agency", "agency_id"),
        ("service", "service_id"),
        ("counter", "counter_id"),
    ):
        if filters.get(key):
            conditions.append(ratings.c[column] == filters[key])
    if lo:
        conditions.append(ratings.c.submitted_at >= lo)
    if hi:
        conditions.append(ratings.c.submitted_at <= hi)
    rows = uow.session.execute(select(ratings).where(*conditions)).mappings()
    aggregate = Aggregate.of(
        Rating(
            r["id"],
            r["agency_id"],
            r["service_id"],
            r["counter_id"],
            r["officer_id"],
            r["stars"],
            r["answers"],
            r["submitted_at"],
        )
        for r in rows
    )
    served_conditions = [invitations.c.completed.is_(True)]
    for key, column in (
        ("agency", "agency_id"),
        ("service", "service_id"),
        ("counter", "counter_id"),
    ):
        if filters.get(key):
            served_conditions.append(invitations.c[column] == filters[key])
    if lo:
        served_conditions.append(invitations.c.completed_at >= lo)
    if hi:
        served_conditions.append(invitations.c.completed_at <= hi)
    served = uow.session.execute(
        select(func.count()).select_from(invitations).where(*served_conditions)
    ).scalar_one()
    result = aggregate.ikm()
    needed = ikm.krejcie_morgan(served) if served else 0
    return {
        "filters": filters,
        "count": aggregate.count,
        "average_stars": _decimal(aggregate.average_stars),
        "csat": _decimal(aggregate.csat),
        "ikm": {
            "weight": result.weight,
            "raw": _decimal(result.ikm),
            "converted": _decimal(result.converted),
            "grade": result.grade,
            "grade_label": result.grade_label,
            "missing_elements": list(result.missing_elements),
            "elements": [
                {
                    "code": e.code,
                    "name": e.name,
                    "respondents": e.answer_count,
                    "nrr": _decimal(e.nrr),
                    "converted": _decimal(e.converted),
                    "grade": e.grade,
                }
                for e in result.elements
            ],
        },
        "served": served,
        "sample_needed": needed,
        "representative": bool(served) and ikm.is_representative(aggregate.count, served),
    }
