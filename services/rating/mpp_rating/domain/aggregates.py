"""Read-model arithmetic: incremental, mergeable aggregates of ratings per dimension and period.

Dashboards read pre-folded buckets (one row per dimension × id × period) instead of scanning every
rating. That is only safe if a bucket holds exactly what a recomputation from the raw ratings
would give, and if day buckets can be merged into any custom range. So an aggregate keeps only
sums and counts (never averages), which add and merge without loss; averages, CSAT and IKM are
derived on read.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, tzinfo
from decimal import Decimal
from fractions import Fraction
from types import MappingProxyType
from typing import Literal, NamedTuple

from mpp_contracts.mallday import local_midnight, mall_day
from mpp_rating.domain.ikm import (
    ANSWER_MAX,
    ANSWER_MIN,
    ELEMENTS,
    IkmResult,
    Weight,
    compute_ikm,
    round_half_up,
)

Dimension = Literal["agency", "service", "counter", "officer"]
PeriodKind = Literal["day", "week", "month"]

DIMENSIONS: tuple[Dimension, ...] = ("agency", "service", "counter", "officer")
PERIOD_KINDS: tuple[PeriodKind, ...] = ("day", "week", "month")

STARS_MIN = 1
STARS_MAX = 5
#: Stars that count as 'satisfied' in CSAT (the usual top-two-box share).
SATISFIED_STARS = (4, 5)

AVERAGE_PLACES = 2
CSAT_PLACES = 4


@dataclass(frozen=True)
class Rating:
    """One citizen's rating of one finished service.

    ``counter_id`` and ``officer_id`` are optional: a service finished without a counter (an online
    step) still counts for its agency and service. Invariants are checked here because aggregates
    trust them; citizen input is checked earlier, field by field, by
    ``validation.validate_submission``.
    """

    rating_id: str
    agency_id: str
    service_id: str
    counter_id: str | None
    officer_id: str | None
    stars: int
    answers: Mapping[str, int]
    submitted_at: datetime

    def __post_init__(self) -> None:
        if isinstance(self.stars, bool) or not STARS_MIN <= self.stars <= STARS_MAX:
            raise ValueError(f"stars must be {STARS_MIN}–{STARS_MAX}, got {self.stars!r}")
        for code, value in self.answers.items():
            if code not in ELEMENTS:
                raise ValueError(f"unknown survey element {code!r}")
            if isinstance(value, bool) or not ANSWER_MIN <= value <= ANSWER_MAX:
                raise ValueError(f"{code} must be {ANSWER_MIN}–{ANSWER_MAX}, got {value!r}")
        if self.submitted_at.utcoffset() is None:
            raise ValueError("submitted_at must be timezone-aware")
        object.__setattr__(self, "answers", MappingProxyType(dict(self.answers)))

    def dimension_id(self, dimension: Dimension) -> str | None:
        """The id this rating has in ``dimension`` (None when it has none, e.g. no counter)."""
        if dimension == "agency":
            return self.agency_id
        if dimension == "service":
            return self.service_id
        if dimension == "counter":
            return self.counter_id
        if dimension == "officer":
            return self.officer_id
        raise ValueError(f"unknown dimension {dimension!r}")


def _zero_per_element() -> dict[str, int]:
    return dict.fromkeys(ELEMENTS, 0)


@dataclass
class Aggregate:
    """Sums and counts of a set of ratings; equal aggregates mean equal derived figures.

    Per-element sums and counts always hold all nine keys, so two aggregates of the same ratings
    compare equal however they were built.
    """

    count: int = 0
    stars_sum: int = 0
    stars_4_5: int = 0
    element_sums: dict[str, int] = field(default_factory=_zero_per_element)
    element_counts: dict[str, int] = field(default_factory=_zero_per_element)

    @classmethod
    def of(cls, ratings: Iterable[Rating]) -> Aggregate:
        """Fold ratings into a fresh aggregate."""
        aggregate = cls()
        for rating in ratings:
            aggregate.add(rating)
        return aggregate

    def add(self, rating: Rating) -> None:
        """Fold one rating in; the caller deduplicates by rating_id (a rating is folded once)."""
        self.count += 1
        self.stars_sum += rating.stars
        if rating.stars in SATISFIED_STARS:
            self.stars_4_5 += 1
        for code, value in rating.answers.items():
            self.element_sums[code] += value
            self.element_counts[code] += 1

    def merged(self, other: Aggregate) -> Aggregate:
        """The aggregate of both sets of ratings (disjoint sets: merging never deduplicates)."""
        return Aggregate(
            count=self.count + other.count,
            stars_sum=self.stars_sum + other.stars_sum,
            stars_4_5=self.stars_4_5 + other.stars_4_5,
            element_sums={c: self.element_sums[c] + other.element_sums[c] for c in ELEMENTS},
            element_counts={c: self.element_counts[c] + other.element_counts[c] for c in ELEMENTS},
        )

    @property
    def average_stars(self) -> Decimal | None:
        """Mean stars, rounded half up to 2 decimals; None for an empty aggregate."""
        if self.count == 0:
            return None
        return round_half_up(Fraction(self.stars_sum, self.count), AVERAGE_PLACES)

    @property
    def csat(self) -> Decimal | None:
        """Share (0–1, 4 decimals) of ratings with 4 or 5 stars; None for an empty aggregate."""
        if self.count == 0:
            return None
        return round_half_up(Fraction(self.stars_4_5, self.count), CSAT_PLACES)

    def ikm(self, weight: Weight = "exact") -> IkmResult:
        """The satisfaction index of these ratings (see ``compute_ikm`` for gaps)."""
        return compute_ikm(self.element_sums, self.element_counts, weight=weight)


class BucketKey(NamedTuple):
    """Read-model row key: which aggregate a rating is folded into."""

    dimension: Dimension
    id: str
    period_kind: PeriodKind
    period_start: date


def period_start(kind: PeriodKind, day: date) -> date:
    """First local day of the day/ISO week (Monday)/month containing ``day``."""
    if kind == "day":
        return day
    if kind == "week":
        return day - timedelta(days=day.weekday())
    if kind == "month":
        return day.replace(day=1)
    raise ValueError(f"unknown period kind {kind!r}")


def period_end(kind: PeriodKind, start: date) -> date:
    """First local day after the period that starts on ``start`` (exclusive end)."""
    if kind == "day":
        return start + timedelta(days=1)
    if kind == "week":
        return start + timedelta(days=7)
    if kind == "month":
        return (start.replace(day=28) + timedelta(days=4)).replace(day=1)
    raise ValueError(f"unknown period kind {kind!r}")


def bucket_range(kind: PeriodKind, start: date, tz: tzinfo) -> tuple[datetime, datetime]:
    """The half-open instant range [start, end) a bucket covers, for ``recompute``."""
    return local_midnight(start, tz), local_midnight(period_end(kind, start), tz)


def bucket_keys(rating: Rating, tz: tzinfo) -> list[BucketKey]:
    """Every read-model row a rating contributes to.

    Periods are cut in the mall's local time (a rating at 23:30 WIT belongs to that local day, not
    the UTC one). Dimensions for which the rating has no id (no counter, no officer) are skipped.
    """
    local_day = mall_day(rating.submitted_at, tz)
    keys: list[BucketKey] = []
    for dimension in DIMENSIONS:
        dimension_id = rating.dimension_id(dimension)
        if dimension_id is None:
            continue
        for kind in PERIOD_KINDS:
            keys.append(BucketKey(dimension, dimension_id, kind, period_start(kind, local_day)))
    return keys


def recompute(
    ratings: Iterable[Rating],
    dimension: Dimension,
    id: str,
    start: datetime,
    end: datetime,
) -> Aggregate:
    """Aggregate from raw ratings for one dimension id over the half-open range [start, end).

    The source of truth against which the incremental buckets are checked, and the repair path
    when a bucket is suspected wrong. ``start`` and ``end`` are aware instants (see
    ``bucket_range``).
    """
    if dimension not in DIMENSIONS:
        raise ValueError(f"unknown dimension {dimension!r}")
    if start.utcoffset() is None or end.utcoffset() is None:
        raise ValueError("start and end must be timezone-aware")
    return Aggregate.of(
        rating
        for rating in ratings
        if rating.dimension_id(dimension) == id and start <= rating.submitted_at < end
    )
