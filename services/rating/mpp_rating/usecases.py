"""Rating use cases: invitations from ticket and payment facts, one-time submission, the aggregate
read model, summaries, the leaderboard and complaints.

Each function takes the unit of work, the frozen settings and plain values; the rules themselves
live in ``mpp_rating.domain`` and are only called from here.
"""

from __future__ import annotations

import functools
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import and_, bindparam, func, insert, or_, select, text, update
from sqlalchemy.exc import IntegrityError

from mpp_contracts.errors import BadRequest, Conflict, Forbidden, NotFound, ValidationFailed
from mpp_contracts.mallday import local_midnight, mall_day
from mpp_contracts.pagination import DEFAULT_LIMIT, decode_cursor, page
from mpp_rating.adapters.tables import (
    agencies,
    complaint_responses,
    complaints,
    invitations,
    rating_buckets,
    ratings,
)
from mpp_rating.domain import complaints as complaint_rules
from mpp_rating.domain import ikm
from mpp_rating.domain import invitations as rules
from mpp_rating.domain import leaderboard as board
from mpp_rating.domain.aggregates import (
    DIMENSIONS,
    SATISFIED_STARS,
    Aggregate,
    Rating,
    bucket_keys,
    period_end,
    period_start,
)
from mpp_rating.domain.ikm import ELEMENTS
from mpp_rating.domain.validation import validate_submission

#: How many published comments a public summary shows (newest first).
PUBLISHED_COMMENTS_SHOWN = 20


@dataclass(frozen=True)
class Settings:
    mall_timezone: str = "Asia/Jakarta"
    token_days: int = 7
    ikm_weight: ikm.Weight = "exact"

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.mall_timezone)


def now_utc() -> datetime:
    return datetime.now(UTC)


def _decimal(value) -> str | None:
    return None if value is None else str(value)


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


# -- catalogue copy -------------------------------------------------------------------------------


def on_agency_registered(uow, payload: dict) -> None:
    """Keep the agency's code and name (for the leaderboard) without ever calling the queue."""
    values = {"code": payload["code"], "name": payload["name"]}
    session = uow.session
    changed = session.execute(
        update(agencies).where(agencies.c.agency_id == payload["agency_id"]).values(**values)
    ).rowcount
    if not changed:
        session.execute(insert(agencies).values(agency_id=payload["agency_id"], **values))


# -- invitations ----------------------------------------------------------------------------------


def _state(row) -> rules.InvitationState:
    return rules.InvitationState(
        completed=row["completed"], settled=row["settled"], invited=row["token"] is not None
    )


@functools.cache
def _upsert_invitation(insert_columns: tuple[str, ...], update_columns: tuple[str, ...]):
    """``INSERT … ON CONFLICT (ticket_id) DO UPDATE … RETURNING`` (PostgreSQL and SQLite alike),
    built once per shape. Text, as SQLAlchemy cannot cache a compiled ``ON CONFLICT``."""
    columns = ("ticket_id", *insert_columns)
    return (
        text(
            f"INSERT INTO invitations ({', '.join(columns)}) "  # noqa: S608 - column names
            f"VALUES ({', '.join(':' + c for c in columns)}) "
            "ON CONFLICT (ticket_id) DO UPDATE SET "
            + ", ".join(f"{c} = excluded.{c}" for c in update_columns)
            + f" RETURNING {', '.join(c.name for c in invitations.c)}"
        )
        .bindparams(
            *(bindparam(c, type_=invitations.c[c].type) for c in columns if c.endswith("_at"))
        )
        .columns(*invitations.c)
    )


def _record(uow, ticket_id: str, insert_values: dict, update_values: dict) -> dict:
    """Upsert the facts known about one ticket's invitation and return the row: one statement
    (it was an update, a savepoint around an insert and a read: five round trips), and two
    facts arriving at the same instant meet in the database's conflict handling.
    ``update_values`` are some of ``insert_values`` (the facts this event brings)."""
    statement = _upsert_invitation(tuple(insert_values), tuple(update_values))
    row = uow.session.execute(statement, {"ticket_id": ticket_id, **insert_values})
    return dict(row.mappings().one())


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
                "counter_id": row["counter_id"],
                "officer_id": row["officer_id"],
                "token": token,
                "expires_at": expires,
            },
        )


def on_ticket_completed(uow, settings: Settings, payload: dict) -> None:
    """The queue's fact: the visit was served (by whom, where). Its fee is not read: whether
    the ticket needs paying is the payment service's fact (:func:`on_payment_settled`)."""
    facts = {
        "agency_id": payload["agency_id"],
        "service_id": payload["service_id"],
        "counter_id": payload["counter_id"],
        "officer_id": payload["officer_id"],
        "completed": True,
        "completed_at": payload["completed_at"],
    }
    row = _record(uow, payload["ticket_id"], {**facts, "settled": False}, facts)
    _maybe_invite(uow, settings, row)


def on_payment_settled(uow, settings: Settings, payload: dict) -> None:
    """The payment service's fact: nothing is owed on the ticket (``payment_succeeded``, or
    ``payment_not_required``); it may come before the completion."""
    row = _record(
        uow,
        payload["ticket_id"],
        {
            "agency_id": payload["agency_id"],
            "service_id": payload["service_id"],
            "completed": False,
            "settled": True,
        },
        {"settled": True},
    )
    _maybe_invite(uow, settings, row)


# -- submission -----------------------------------------------------------------------------------


def _answer(rating: dict, complaint_id: str | None) -> dict:
    submitted_at = rating["submitted_at"]
    return {
        "id": rating["id"],
        "ticket_id": rating["ticket_id"],
        "stars": rating["stars"],
        "answers": rating["answers"],
        "comment": rating["comment"],
        "submitted_at": submitted_at.isoformat(),
        "complaint_id": complaint_id,
    }


_RATING_FOR_REQUEST = (
    select(ratings, complaints.c.id.label("complaint_id"))
    .outerjoin(complaints, complaints.c.rating_id == ratings.c.id)
    .where(ratings.c.request_key == bindparam("request_key"))
)


def rating_for_request(session, request_key: str) -> dict | None:
    """The answer a keyed submission already got, if it was stored."""
    row = session.execute(_RATING_FOR_REQUEST, {"request_key": request_key}).mappings().first()
    return None if row is None else _answer(row, row["complaint_id"])


def submit_rating(
    uow,
    settings: Settings,
    data: dict,
    now: datetime | None = None,
    request_key: str | None = None,
) -> dict:
    """Store one rating with a one-time token; opens a complaint for 1–2 stars or a flag.

    The token is consumed by a conditional update (``used_at IS NULL``): of two submissions at the
    same instant, the database lets exactly one update the row; the other sees 0 rows and gets 409.
    The unique ticket id on ``ratings`` is the second lock on the same door.

    With a ``request_key`` (the gateway's hash of the client's ``Idempotency-Key``, its scope and
    the body) the same request is answered with the rating it stored, however often it arrives:
    a retry that took over the key of a gateway that died mid-request gets the rating, not
    "token used", also when both arrive at once (the second finds the token used, by the first).
    """
    session = uow.session
    row = (
        session.execute(select(invitations).where(invitations.c.token == data["token"]))
        .mappings()
        .first()
    )
    if row is None:
        raise NotFound("TOKEN_NOT_FOUND", "no rating invitation with this token")
    now = now or now_utc()
    status = rules.token_usable(row["expires_at"], row["used_at"], now)
    answers = dict(data.get("answers") or {})
    if status == "ok":
        problems = validate_submission(data.get("stars"), answers, data.get("comment"))
        if problems:
            raise ValidationFailed(
                "VALIDATION_FAILED", "invalid fields", {p.field: [p.message] for p in problems}
            )
        claimed = session.execute(
            update(invitations)
            .where(invitations.c.ticket_id == row["ticket_id"], invitations.c.used_at.is_(None))
            .values(used_at=now)
        ).rowcount
        if not claimed:  # another submission with the same token won the race
            status = "used"
    if status != "ok":
        stored = status == "used" and request_key and rating_for_request(session, request_key)
        if stored:
            return stored  # this request's rating, stored by an earlier or a concurrent attempt
        raise Conflict(f"TOKEN_{status.upper()}", f"this rating token is {status}")
    flagged = bool(data.get("flag_complaint"))
    rating = {
        "id": str(uuid.uuid4()),
        "ticket_id": row["ticket_id"],
        "agency_id": row["agency_id"],
        "service_id": row["service_id"],
        "counter_id": row["counter_id"],
        "officer_id": row["officer_id"],
        "stars": data["stars"],
        "answers": answers,
        "comment": data.get("comment"),
        "submitted_at": now,
        "flagged": flagged,
    }
    try:
        with session.begin_nested():
            session.execute(insert(ratings).values(**rating, request_key=request_key))
    except IntegrityError:
        raise Conflict("TOKEN_USED", "this rating token is used") from None
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
                    "flagged",
                )
            },
            "has_comment": bool(rating["comment"]),
        },
    )
    complaint_id = None
    if complaint_rules.should_open_complaint(rating["stars"], flagged):
        complaint_id = _open_complaint(uow, rating, "flagged" if flagged else "low_stars", now)
    return _answer(rating, complaint_id)


# -- the read model -------------------------------------------------------------------------------

_SUM_COLUMNS = (
    "count",
    "stars_sum",
    "stars_4_5",
    *(f"{c.lower()}_sum" for c in ELEMENTS),
    *(f"{c.lower()}_count" for c in ELEMENTS),
)


def _increments(rating: Rating) -> dict[str, int]:
    values = dict.fromkeys(_SUM_COLUMNS, 0)
    values["count"] = 1
    values["stars_sum"] = rating.stars
    values["stars_4_5"] = int(rating.stars in SATISFIED_STARS)
    for code, answer in rating.answers.items():
        values[f"{code.lower()}_sum"] = answer
        values[f"{code.lower()}_count"] = 1
    return values


def _rating_from_payload(payload: dict) -> Rating:
    return Rating(
        payload["rating_id"],
        payload["agency_id"],
        payload["service_id"],
        payload.get("counter_id"),
        payload.get("officer_id"),
        payload["stars"],
        payload.get("answers") or {},
        payload["submitted_at"],
    )


def on_rating_submitted(uow, settings: Settings, payload: dict) -> None:
    """Fold one rating into its 12 buckets with atomic increments (upsert … SET x = x + n).

    The caller claims the event first (``claim_event``), so a redelivered event is folded once;
    concurrent handlers never lose an update because the increment happens in the database.
    """
    from sqlalchemy.dialects.postgresql import insert as pg_insert
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    rating = _rating_from_payload(payload)
    increments = _increments(rating)
    session = uow.session
    dialect_insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    for key in bucket_keys(rating, settings.tz):
        stmt = dialect_insert(rating_buckets).values(
            dimension=key.dimension,
            dimension_id=key.id,
            period_kind=key.period_kind,
            period_start=key.period_start,
            **increments,
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=["dimension", "dimension_id", "period_kind", "period_start"],
            set_={
                name: rating_buckets.c[name] + value for name, value in increments.items() if value
            },
        )
        session.execute(stmt)


def _aggregate(row) -> Aggregate:
    """An aggregate from a row of (possibly NULL) sums over bucket columns."""
    value = {name: int(row[name] or 0) for name in _SUM_COLUMNS}
    return Aggregate(
        count=value["count"],
        stars_sum=value["stars_sum"],
        stars_4_5=value["stars_4_5"],
        element_sums={c: value[f"{c.lower()}_sum"] for c in ELEMENTS},
        element_counts={c: value[f"{c.lower()}_count"] for c in ELEMENTS},
    )


def _summed():
    return [func.sum(rating_buckets.c[name]).label(name) for name in _SUM_COLUMNS]


def read_buckets(
    uow,
    dimension: str,
    dimension_id: str | None,
    kind: str,
    first: date | None,
    last: date | None,
) -> Aggregate:
    """Merge the read model's ``kind`` buckets starting in [first, last] for one id (or, with
    ``dimension_id`` None, for every id of the dimension: the whole mall for 'agency')."""
    conditions = [rating_buckets.c.dimension == dimension, rating_buckets.c.period_kind == kind]
    if dimension_id is not None:
        conditions.append(rating_buckets.c.dimension_id == dimension_id)
    if first is not None:
        conditions.append(rating_buckets.c.period_start >= first)
    if last is not None:
        conditions.append(rating_buckets.c.period_start <= last)
    row = uow.session.execute(select(*_summed()).where(*conditions)).mappings().one()
    return _aggregate(row)


def recompute_from_ratings(
    uow, settings: Settings, dimension: str, dimension_id: str, start: datetime, end: datetime
) -> Aggregate:
    """The reference: fold the raw ratings of one id submitted in [start, end)."""
    column = ratings.c[f"{dimension}_id"]
    rows = uow.session.execute(
        select(ratings).where(
            column == dimension_id, ratings.c.submitted_at >= start, ratings.c.submitted_at < end
        )
    ).mappings()
    return Aggregate.of(
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


# -- summaries ------------------------------------------------------------------------------------


def _figure(result) -> dict:
    return {
        "weight": result.weight,
        "weight_value": f"{result.weight_value.numerator}/{result.weight_value.denominator}",
        "raw": _decimal(result.ikm),
        "converted": _decimal(result.converted),
        "grade": result.grade,
        "grade_label": result.grade_label,
    }


def _ikm_body(aggregate: Aggregate, weight: ikm.Weight) -> dict:
    """The published index (``IKM_WEIGHT``) and, in ``other_weight``, the same answers under the
    other weight: 0.111, the figure the regulation prints, next to 1/9 (ADR 0004)."""
    result = aggregate.ikm(weight)
    other = aggregate.ikm("regulation" if weight == "exact" else "exact")
    return {
        "other_weight": _figure(other),
        "weight": result.weight,
        "weight_value": f"{result.weight_value.numerator}/{result.weight_value.denominator}",
        "raw": _decimal(result.ikm),
        "converted": _decimal(result.converted),
        "grade": result.grade,
        "grade_label": result.grade_label,
        "missing_elements": list(result.missing_elements),
        "elements": _elements(result),
    }


def _elements(result: ikm.IkmResult) -> list[dict]:
    """The nine elements of an IKM result as published (NRR, weighted, converted, grade)."""
    return [
        {
            "code": e.code,
            "name": e.name,
            "respondents": e.answer_count,
            "nrr": _decimal(e.nrr),
            "weighted_nrr": _decimal(e.weighted_nrr),
            "converted": _decimal(e.converted),
            "grade": e.grade,
        }
        for e in result.elements
    ]


def _served(
    uow, settings: Settings, dimension: str, dimension_id, first: date | None, last: date | None
) -> int:
    """Citizens served (completed tickets) in the local days [first, last]: the K&M population."""
    conditions = [invitations.c.completed.is_(True)]
    if dimension_id is not None:
        conditions.append(invitations.c[f"{dimension}_id"] == dimension_id)
    if first is not None:
        conditions.append(invitations.c.completed_at >= local_midnight(first, settings.tz))
    if last is not None:
        conditions.append(
            invitations.c.completed_at < local_midnight(last + timedelta(days=1), settings.tz)
        )
    return uow.session.execute(
        select(func.count()).select_from(invitations).where(*conditions)
    ).scalar_one()


def _published_comments(uow, settings, dimension, dimension_id, first, last) -> list[dict]:
    """Only comments the agency chose to publish, with no ticket, officer or rating id."""
    conditions = [ratings.c.comment_published_at.is_not(None)]
    if dimension_id is not None:
        conditions.append(ratings.c[f"{dimension}_id"] == dimension_id)
    if first is not None:
        conditions.append(ratings.c.submitted_at >= local_midnight(first, settings.tz))
    if last is not None:
        conditions.append(
            ratings.c.submitted_at < local_midnight(last + timedelta(days=1), settings.tz)
        )
    rows = uow.session.execute(
        select(ratings.c.stars, ratings.c.comment, ratings.c.submitted_at)
        .where(*conditions)
        .order_by(ratings.c.submitted_at.desc())
        .limit(PUBLISHED_COMMENTS_SHOWN)
    ).mappings()
    return [
        {
            "stars": r["stars"],
            "comment": r["comment"],
            "date": mall_day(r["submitted_at"], settings.tz).isoformat(),
        }
        for r in rows
    ]


def summary(uow, settings: Settings, filters: dict, today: date | None = None) -> dict:
    """Counts, stars, CSAT and IKM for one agency/service/counter/officer (the most specific id
    given; none = the whole mall) and one period, read from the aggregate read model.

    ``period`` reads that day/week/month bucket directly; ``from``/``to`` merge day buckets.
    Public: no ticket, officer name, NIK or comment appears unless the agency published it.
    """
    dimension, dimension_id = "agency", None
    for candidate in reversed(DIMENSIONS):  # officer, counter, service, agency
        if filters.get(candidate):
            dimension, dimension_id = candidate, filters[candidate]
            break
    today = today or mall_day(now_utc(), settings.tz)
    kind, first, last = "day", filters.get("from"), filters.get("to")
    if filters.get("period"):
        if first or last:
            raise BadRequest("PERIOD_AND_RANGE", "give either period or from/to, not both")
        kind = filters["period"]
        first = period_start(kind, filters.get("date") or today)
        last = period_end(kind, first) - timedelta(days=1)
    elif first and last and first > last:
        raise ValidationFailed("VALIDATION_FAILED", "invalid fields", {"to": ["before from"]})
    aggregate = read_buckets(
        uow, dimension, dimension_id, kind, first, first if kind != "day" else last
    )
    served = _served(uow, settings, dimension, dimension_id, first, last)
    needed = ikm.krejcie_morgan(served)
    return {
        "dimension": dimension,
        "id": dimension_id,
        "period": {
            "kind": filters.get("period") or "range",
            "from": _iso_date(first),
            "to": _iso_date(last),
        },
        "count": aggregate.count,
        "average_stars": _decimal(aggregate.average_stars),
        "csat": _decimal(aggregate.csat),
        "ikm": _ikm_body(aggregate, settings.ikm_weight),
        "served": served,
        "sample_needed": needed,
        "representative": bool(served) and ikm.is_representative(aggregate.count, served),
        "published_comments": _published_comments(
            uow, settings, dimension, dimension_id, first, last
        ),
    }


def _iso_date(day: date | None) -> str | None:
    return None if day is None else day.isoformat()


def leaderboard(uow, settings: Settings, period: str, today: date | None = None) -> dict:
    """Agencies ranked by converted IKM over a period (``domain.leaderboard`` for the rules)."""
    today = today or mall_day(now_utc(), settings.tz)
    try:
        first, last = board.period_bounds(period, today)
    except ValueError as exc:
        raise ValidationFailed(
            "VALIDATION_FAILED", "invalid fields", {"period": [str(exc)]}
        ) from None
    session = uow.session
    rows = session.execute(
        select(rating_buckets.c.dimension_id, *_summed())
        .where(
            rating_buckets.c.dimension == "agency",
            rating_buckets.c.period_kind == "day",
            rating_buckets.c.period_start >= first,
            rating_buckets.c.period_start <= last,
        )
        .group_by(rating_buckets.c.dimension_id)
    ).mappings()
    aggregates = {r["dimension_id"]: _aggregate(r) for r in rows}
    population = dict(
        session.execute(
            select(invitations.c.agency_id, func.count())
            .where(
                invitations.c.completed.is_(True),
                invitations.c.completed_at >= local_midnight(first, settings.tz),
                invitations.c.completed_at < local_midnight(last + timedelta(days=1), settings.tz),
            )
            .group_by(invitations.c.agency_id)
        ).all()
    )
    names = dict(session.execute(select(agencies.c.agency_id, agencies.c.name)).all())
    entries = []
    for agency_id in sorted(set(aggregates) | set(population)):
        aggregate = aggregates.get(agency_id, Aggregate())
        entries.append(
            board.LeaderboardEntry(
                agency_id=agency_id,
                agency_name=names.get(agency_id, agency_id),
                converted_ikm=aggregate.ikm(settings.ikm_weight).converted,
                respondents=aggregate.count,
                population=population.get(agency_id, 0),
                csat=aggregate.csat,
            )
        )
    return {
        "period": period,
        "from": first.isoformat(),
        "to": last.isoformat(),
        "weight": settings.ikm_weight,
        "items": [
            {
                "rank": r.rank,
                "agency_id": r.entry.agency_id,
                "agency_name": r.entry.agency_name,
                "converted_ikm": _decimal(r.entry.converted_ikm),
                "grade": r.grade,
                "grade_label": r.grade_label,
                "respondents": r.entry.respondents,
                "population": r.entry.population,
                "sample_needed": ikm.krejcie_morgan(r.entry.population),
                "representative": r.representative,
                "csat": _decimal(r.entry.csat),
                # the nine elements, so a public page needs no summary per agency
                "elements": _elements(
                    aggregates.get(r.entry.agency_id, Aggregate()).ikm(settings.ikm_weight)
                ),
            }
            for r in board.rank(entries)
        ],
    }


def publish_comment(uow, rating_id: str, actor: dict | None, now: datetime | None = None) -> dict:
    """An agency publishes a citizen's comment in its public summary (its choice, never ours)."""
    row = uow.session.execute(select(ratings).where(ratings.c.id == rating_id)).mappings().first()
    if row is None:
        raise NotFound("RATING_NOT_FOUND", "no such rating")
    _require_agency(actor, row["agency_id"])
    if not row["comment"]:
        raise Conflict("NO_COMMENT", "this rating has no comment to publish")
    now = now or now_utc()
    uow.session.execute(
        update(ratings)
        .where(ratings.c.id == rating_id, ratings.c.comment_published_at.is_(None))
        .values(comment_published_at=now)
    )
    return {"id": rating_id, "published": True}


# -- complaints -----------------------------------------------------------------------------------


def _require_agency(actor: dict | None, agency_id: str) -> None:
    """Only the mall admin or an agency admin of this agency may act on its complaints."""
    if actor is None:
        raise Forbidden("FORBIDDEN", "an agency key is required")
    if actor.get("role") == "mall_admin":
        return
    if actor.get("role") != "agency_admin" or actor.get("agency_id") != agency_id:
        raise Forbidden("OUT_OF_SCOPE", "this complaint belongs to another agency")


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


def _open_complaint(uow, rating: dict, reason: str, now: datetime) -> str:
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
    _require_agency(actor, row["agency_id"])
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
                "created_at": _iso(r["created_at"]),
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
        "opened_at": _iso(row["opened_at"]),
        "first_response_due": _iso(row["first_response_due"]),
        "resolution_due": _iso(row["resolution_due"]),
        "responded_at": _iso(row["responded_at"]),
        "resolved_at": _iso(row["resolved_at"]),
        "escalated_at": _iso(row["escalated_at"]),
        "escalated_for": row["escalated_for"],
        "responses": responses,
    }


def list_complaints(uow, agency_id: str, query: dict, actor: dict | None) -> dict:
    """An agency's complaints, newest first, keyset-paginated (``cursor`` from the last page)."""
    _require_agency(actor, agency_id)
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
