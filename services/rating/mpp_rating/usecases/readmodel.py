"""The aggregate read model: rating buckets per dimension and period, kept from rating_submitted."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import func, select

from mpp_rating.adapters.tables import (
    rating_buckets,
    ratings,
)
from mpp_rating.domain.aggregates import (
    SATISFIED_STARS,
    Aggregate,
    Rating,
    bucket_keys,
)
from mpp_rating.domain.ikm import ELEMENTS
from mpp_rating.usecases.common import Settings

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


def rating_from_payload(payload: dict) -> Rating:
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

    rating = rating_from_payload(payload)
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


def aggregate_of(row) -> Aggregate:
    """An aggregate from a row of (possibly NULL) sums over bucket columns."""
    value = {name: int(row[name] or 0) for name in _SUM_COLUMNS}
    return Aggregate(
        count=value["count"],
        stars_sum=value["stars_sum"],
        stars_4_5=value["stars_4_5"],
        element_sums={c: value[f"{c.lower()}_sum"] for c in ELEMENTS},
        element_counts={c: value[f"{c.lower()}_count"] for c in ELEMENTS},
    )


def summed():
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
    row = uow.session.execute(select(*summed()).where(*conditions)).mappings().one()
    return aggregate_of(row)


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
