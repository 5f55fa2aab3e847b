"""The aggregate read model: rating buckets per dimension and period, folded by each submission."""

from __future__ import annotations

import functools
from datetime import date, datetime

from sqlalchemy import Date, bindparam, func, select, text

from mpp_chassis.prepared import PREPARE
from mpp_rating.adapters.tables import (
    processed_events,
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
from mpp_rating.usecases.common import Settings, now_utc

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


_KEY_COLUMNS = ("dimension", "dimension_id", "period_kind", "period_start")
#: The handler that folded ``rating_submitted`` before the submission did (decision 0030): the
#: submission claims its event under this name, so a replica of the previous version, still
#: consuming that queue during a rolling upgrade, skips the ratings folded here.
FORMER_HANDLER = "handle_rating_submitted"


@functools.cache
def _fold_statement(rows: int, postgresql: bool):
    """One upsert of ``rows`` buckets (``SET col = col + excluded.col``), written as text and
    built once per row count: SQLAlchemy compiles an ``ON CONFLICT`` construct anew on every
    call, which cost more than executing it. On PostgreSQL the event's claim rides along (a
    data-modifying CTE); SQLite claims it with a statement of its own."""
    columns = (*_KEY_COLUMNS, *_SUM_COLUMNS)
    values = ", ".join(
        "(" + ", ".join(f":{name}_{n}" for name in columns) + ")" for n in range(rows)
    )
    claim = (
        "WITH claim AS (INSERT INTO processed_events (event_id, handler, processed_at) "
        "VALUES (:claim_event_id, :claim_handler, :claim_at)) "
        if postgresql
        else ""
    )
    names = ", ".join(f'"{name}"' for name in columns)
    increments = ", ".join(
        f'"{name}" = rating_buckets."{name}" + excluded."{name}"' for name in _SUM_COLUMNS
    )
    sql = (
        f"{claim}INSERT INTO rating_buckets ({names}) VALUES {values} "  # noqa: S608 - our names
        f"ON CONFLICT ({', '.join(_KEY_COLUMNS)}) DO UPDATE SET {increments}"
    )
    types = [bindparam(f"period_start_{n}", type_=Date) for n in range(rows)]
    if not postgresql:
        return text(sql).bindparams(*types)
    types.append(bindparam("claim_at", type_=processed_events.c.processed_at.type))
    return text(sql).bindparams(*types).execution_options(**PREPARE)  # planned once per connection


def fold_rating(uow, settings: Settings, rating: Rating, event_id: str) -> None:
    """Fold one rating into its buckets (up to 12: dimension × period) in one statement, in the
    submission's own transaction, and claim its ``rating_submitted`` (``event_id``) for the
    former handler (:data:`FORMER_HANDLER`).

    Increments happen in the database (``SET x = x + n``), so concurrent submissions never lose
    an update; the rows are locked in one fixed order (dimension, then period), so two
    submissions sharing buckets never deadlock; the statement is the transaction's last, so a
    busy agency's rows stay locked for its commit only."""
    session = uow.session
    postgresql = session.get_bind().dialect.name == "postgresql"
    increments = _increments(rating)
    params: dict = {}
    keys = bucket_keys(rating, settings.tz)
    for n, key in enumerate(keys):
        params[f"dimension_{n}"] = key.dimension
        params[f"dimension_id_{n}"] = key.id
        params[f"period_kind_{n}"] = key.period_kind
        params[f"period_start_{n}"] = key.period_start
        for name, value in increments.items():
            params[f"{name}_{n}"] = value
    if postgresql:
        params.update(claim_event_id=event_id, claim_handler=FORMER_HANDLER, claim_at=now_utc())
    else:
        uow.claim_event(event_id, FORMER_HANDLER)
    session.execute(_fold_statement(len(keys), postgresql), params)


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
