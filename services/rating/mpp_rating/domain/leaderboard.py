"""The mall's public ranking of agencies by satisfaction index for a period.

Ranking an agency on a handful of respondents would reward luck, so only representative results
(Krejcie & Morgan) are ranked; the others are still listed, after the ranked ones, without a rank,
so an agency can see it is missing respondents rather than vanish.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from mpp_rating.domain.ikm import grade, is_representative, round_half_up


@dataclass(frozen=True)
class LeaderboardEntry:
    """One agency's figures for the period; ``population`` is its number of finished services."""

    agency_id: str
    agency_name: str
    converted_ikm: Decimal | None
    respondents: int
    population: int
    csat: Decimal | None = None


@dataclass(frozen=True)
class RankedEntry:
    """An entry with its place; ``rank`` is None for an entry that is listed but not ranked."""

    rank: int | None
    entry: LeaderboardEntry
    representative: bool
    grade: str | None
    grade_label: str | None


def _merit(entry: LeaderboardEntry) -> tuple[Decimal, int, Decimal]:
    """What earns a place, best first after negation: IKM (2 decimals), respondents, CSAT.

    IKM is compared as published (rounded half up to 2 decimals): two agencies showing 85.00 are
    equal on IKM even if the third decimal differs. A missing CSAT counts as lowest.
    """
    ikm = round_half_up(entry.converted_ikm, 2) if entry.converted_ikm is not None else Decimal(-1)
    csat = entry.csat if entry.csat is not None else Decimal(-1)
    return (-ikm, -entry.respondents, -csat)


def _order(entry: LeaderboardEntry) -> tuple[tuple[Decimal, int, Decimal], str, str]:
    """Merit, then name and id: name only makes the listing stable, it does not separate ranks."""
    return (_merit(entry), entry.agency_name.casefold(), entry.agency_id)


def _representative(entry: LeaderboardEntry) -> bool:
    return entry.converted_ikm is not None and is_representative(
        entry.respondents, entry.population
    )


def rank(entries: Iterable[LeaderboardEntry]) -> list[RankedEntry]:
    """Ranked entries first, then unranked ones; standard competition ranking (1, 2, 2, 4).

    Order: higher converted IKM, then more respondents, then higher CSAT, then agency name. Entries
    equal on IKM, respondents and CSAT share a rank; the next distinct entry's rank skips the shared
    places, so a rank always says how many agencies did strictly better.
    """
    ranked: list[LeaderboardEntry] = []
    unranked: list[LeaderboardEntry] = []
    for entry in entries:
        (ranked if _representative(entry) else unranked).append(entry)
    ranked.sort(key=_order)
    unranked.sort(key=_order)

    result: list[RankedEntry] = []
    previous_merit = None
    current_rank = 0
    for position, entry in enumerate(ranked, start=1):
        merit = _merit(entry)
        if merit != previous_merit:
            current_rank = position
            previous_merit = merit
        result.append(_ranked(current_rank, entry, representative=True))
    result.extend(_ranked(None, entry, representative=False) for entry in unranked)
    return result


def _ranked(place: int | None, entry: LeaderboardEntry, *, representative: bool) -> RankedEntry:
    letter, label = grade(entry.converted_ikm) if entry.converted_ikm is not None else (None, None)
    return RankedEntry(place, entry, representative, letter, label)


_MONTH = re.compile(r"(?P<year>\d{4})-(?P<month>0[1-9]|1[0-2])")


def period_bounds(period: str, today: date) -> tuple[date, date]:
    """First and last local day (both inclusive) of the whole calendar period containing ``today``.

    'day', 'week' (ISO, Monday–Sunday), 'month', 'year', or an explicit month 'YYYY-MM'. The end may
    lie after ``today``: a leaderboard for this week covers the whole week as it fills up.
    """
    if period == "day":
        return today, today
    if period == "week":
        start = today - timedelta(days=today.weekday())
        return start, start + timedelta(days=6)
    if period == "month":
        return _month_bounds(today.year, today.month)
    if period == "year":
        return date(today.year, 1, 1), date(today.year, 12, 31)
    match = _MONTH.fullmatch(period)
    if match is None:
        raise ValueError(f"period must be day, week, month, year or YYYY-MM, got {period!r}")
    return _month_bounds(int(match["year"]), int(match["month"]))


def _month_bounds(year: int, month: int) -> tuple[date, date]:
    start = date(year, month, 1)
    next_month = (start.replace(day=28) + timedelta(days=4)).replace(day=1)
    return start, next_month - timedelta(days=1)
