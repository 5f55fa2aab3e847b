"""Published figures: IKM summaries, the leaderboard and published comments."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from sqlalchemy import func, select, update

from mpp_contracts.errors import BadRequest, Conflict, NotFound, ValidationFailed
from mpp_contracts.mallday import local_midnight, mall_day
from mpp_rating.adapters.tables import (
    agencies,
    invitations,
    rating_buckets,
    ratings,
)
from mpp_rating.domain import ikm
from mpp_rating.domain import leaderboard as board
from mpp_rating.domain.aggregates import (
    DIMENSIONS,
    Aggregate,
    period_end,
    period_start,
)
from mpp_rating.usecases.common import PUBLISHED_COMMENTS_SHOWN, Settings, decimal_text, now_utc
from mpp_rating.usecases.complaints import require_agency
from mpp_rating.usecases.readmodel import aggregate_of, read_buckets, summed


def _figure(result) -> dict:
    return {
        "weight": result.weight,
        "weight_value": f"{result.weight_value.numerator}/{result.weight_value.denominator}",
        "raw": decimal_text(result.ikm),
        "converted": decimal_text(result.converted),
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
        "raw": decimal_text(result.ikm),
        "converted": decimal_text(result.converted),
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
            "nrr": decimal_text(e.nrr),
            "weighted_nrr": decimal_text(e.weighted_nrr),
            "converted": decimal_text(e.converted),
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
        "average_stars": decimal_text(aggregate.average_stars),
        "csat": decimal_text(aggregate.csat),
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
        select(rating_buckets.c.dimension_id, *summed())
        .where(
            rating_buckets.c.dimension == "agency",
            rating_buckets.c.period_kind == "day",
            rating_buckets.c.period_start >= first,
            rating_buckets.c.period_start <= last,
        )
        .group_by(rating_buckets.c.dimension_id)
    ).mappings()
    aggregates = {r["dimension_id"]: aggregate_of(r) for r in rows}
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
                "converted_ikm": decimal_text(r.entry.converted_ikm),
                "grade": r.grade,
                "grade_label": r.grade_label,
                "respondents": r.entry.respondents,
                "population": r.entry.population,
                "sample_needed": ikm.krejcie_morgan(r.entry.population),
                "representative": r.representative,
                "csat": decimal_text(r.entry.csat),
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
    require_agency(actor, row["agency_id"])
    if not row["comment"]:
        raise Conflict("NO_COMMENT", "this rating has no comment to publish")
    now = now or now_utc()
    uow.session.execute(
        update(ratings)
        .where(ratings.c.id == rating_id, ratings.c.comment_published_at.is_(None))
        .values(comment_published_at=now)
    )
    return {"id": rating_id, "published": True}
