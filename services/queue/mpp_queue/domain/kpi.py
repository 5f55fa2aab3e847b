"""Queue KPIs from finished (or still open) ticket records.

Waiting time is issue -> first call; serving time is start -> complete. Each is reported as count,
mean, median and 90th percentile in seconds. Percentiles use the nearest-rank method (the value at
rank ``ceil(p/100 * n)`` of the sorted sample), the median included: every figure is a time some
citizen actually waited, and the method needs no interpolation choice a reader must guess.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from zoneinfo import ZoneInfo

from .tickets import TicketStatus

GROUP_FIELDS = ("agency_id", "service_id", "counter_id", "day")


@dataclass(frozen=True)
class TicketRecord:
    """One ticket as the reporting side sees it (plain values, as read from storage)."""

    agency_id: str
    service_id: str
    counter_id: str | None
    day: date
    issued_at: datetime
    called_at: datetime | None
    started_at: datetime | None
    completed_at: datetime | None
    status: TicketStatus
    transferred: bool = False
    sla_breached: bool = False


@dataclass(frozen=True)
class Stats:
    """Summary of durations in seconds; the figures are ``None`` when there is no sample."""

    count: int = 0
    mean: float | None = None
    median: float | None = None
    p90: float | None = None


@dataclass(frozen=True)
class Kpi:
    tickets: int = 0
    waiting: Stats = field(default_factory=Stats)
    serving: Stats = field(default_factory=Stats)
    served: int = 0
    no_shows: int = 0
    transfers: int = 0
    cancelled: int = 0
    sla_breaches: int = 0


def nearest_rank(sorted_values: Sequence[float], percent: float) -> float:
    """The nearest-rank percentile of an already sorted, non-empty sample."""
    if not sorted_values:
        raise ValueError("no values")
    if not 0 < percent <= 100:
        raise ValueError("percent must be in (0, 100]")
    rank = math.ceil(round(percent / 100 * len(sorted_values), 9))
    return sorted_values[max(rank, 1) - 1]


def summarize(durations: Iterable[float]) -> Stats:
    """Count, mean, nearest-rank median and p90 of a sample of durations in seconds."""
    values = sorted(durations)
    if not values:
        return Stats()
    return Stats(
        count=len(values),
        mean=sum(values) / len(values),
        median=nearest_rank(values, 50),
        p90=nearest_rank(values, 90),
    )


def _seconds(start: datetime | None, end: datetime | None) -> float | None:
    """A duration, or ``None`` when either end is missing or the clock ran backwards.

    A negative duration is a clock or data error; leaving it out keeps one bad row from skewing (or
    crashing) a whole report.
    """
    if start is None or end is None:
        return None
    seconds = (end - start).total_seconds()
    return seconds if seconds >= 0 else None


def compute_kpis(
    records: Iterable[TicketRecord], group_by: Sequence[str] = ("agency_id",)
) -> dict[tuple, Kpi]:
    """KPIs per group; the key is the tuple of the ``group_by`` fields' values, in that order.

    ``group_by=()`` gives one overall group keyed ``()``. Groups appear in the order their first
    record does. A transfer is counted on the ticket that was transferred out (``transferred`` flag
    or final status ``transferred``); the ticket it became is a new record in the target line.
    """
    unknown = [name for name in group_by if name not in GROUP_FIELDS]
    if unknown or len(set(group_by)) != len(group_by):
        raise ValueError(f"group_by must be distinct fields among {GROUP_FIELDS}")
    groups: dict[tuple, list[TicketRecord]] = {}
    for record in records:
        key = tuple(getattr(record, name) for name in group_by)
        groups.setdefault(key, []).append(record)
    return {key: _kpi(rows) for key, rows in groups.items()}


def _kpi(rows: list[TicketRecord]) -> Kpi:
    waits = (_seconds(r.issued_at, r.called_at) for r in rows)
    services = (_seconds(r.started_at, r.completed_at) for r in rows)
    statuses = [TicketStatus(r.status) for r in rows]
    return Kpi(
        tickets=len(rows),
        waiting=summarize(w for w in waits if w is not None),
        serving=summarize(s for s in services if s is not None),
        served=statuses.count(TicketStatus.DONE),
        no_shows=statuses.count(TicketStatus.NO_SHOW),
        transfers=sum(1 for r in rows if r.transferred or r.status == TicketStatus.TRANSFERRED),
        cancelled=statuses.count(TicketStatus.CANCELLED),
        sla_breaches=sum(1 for r in rows if r.sla_breached),
    )


@dataclass(frozen=True)
class Hour:
    """One local hour of a mall day: tickets taken in it, tickets served (completed) in it, and
    the waits (issue -> first call) of the citizens who took their ticket in it."""

    hour: int
    taken: int = 0
    served: int = 0
    waiting: Stats = field(default_factory=Stats)


def by_hour(records: Iterable[TicketRecord], timezone: str) -> list[Hour]:
    """The mall day hour by hour, local hours 0-23 in ``timezone`` (all 24, empty ones too, so a
    chart's axis never depends on the data).

    A wait is counted in the hour its citizen *arrived*, not the hour they were called: "those
    who came at nine waited 40 minutes" is what a manager staffs the counters by. A completion
    on another local day than the ticket's (a day closed late) is left out of ``served``.
    """
    zone = ZoneInfo(timezone)
    taken = [0] * 24
    served = [0] * 24
    waits: list[list[float]] = [[] for _ in range(24)]
    for record in records:
        if record.issued_at.tzinfo is None or (
            record.completed_at is not None and record.completed_at.tzinfo is None
        ):
            raise ValueError("ticket times must be timezone-aware")
        arrived = record.issued_at.astimezone(zone)
        if arrived.date() == record.day:
            taken[arrived.hour] += 1
            wait = _seconds(record.issued_at, record.called_at)
            if wait is not None:
                waits[arrived.hour].append(wait)
        if TicketStatus(record.status) is TicketStatus.DONE and record.completed_at is not None:
            done = record.completed_at.astimezone(zone)
            if done.date() == record.day:
                served[done.hour] += 1
    return [Hour(h, taken[h], served[h], summarize(waits[h])) for h in range(24)]
