"""Service-level (SLA) breach detection, one of MPP Digital's criteria ("work past its SLA").

Each service publishes its own completion time (Standar Pelayanan, PermenPANRB 15/2014); there is no
national waiting-time standard. For the queue the clock runs from the ticket's issue until the visit
ends, counting waiting and serving alike: the citizen experiences both.

    deadline = issued_at + sla_minutes
    breached = (completed_at if completed_at is set else now) > deadline

Exactly at the deadline is not a breach. A finished ticket is judged by its end time, so the answer
no longer changes with ``now``. ``started_at`` does not move the deadline; it is checked for order
only, so that a corrupt record is refused instead of silently judged.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from .numbering import require_aware


def sla_deadline(issued_at: datetime, sla_minutes: int) -> datetime:
    """The instant after which an unfinished ticket is in breach (for timers and range queries)."""
    require_aware(issued_at, "issued_at")
    if sla_minutes <= 0:
        raise ValueError("sla_minutes must be positive")
    return issued_at + timedelta(minutes=sla_minutes)


def sla_breached(
    *,
    issued_at: datetime,
    started_at: datetime | None,
    completed_at: datetime | None,
    sla_minutes: int | None,
    now: datetime,
) -> bool:
    """Whether a ticket is (or ended) past its service's SLA.

    ``completed_at`` is when the ticket left the line for good: done, or equally a no-show, a
    cancellation or a transfer (the caller passes the end time). ``sla_minutes=None`` means the
    service publishes no queue time, so nothing can be breached.
    """
    require_aware(issued_at, "issued_at")
    require_aware(now, "now")
    for name, value in (("started_at", started_at), ("completed_at", completed_at)):
        if value is not None and require_aware(value, name) < issued_at:
            raise ValueError(f"{name} is before issued_at")
    if started_at is not None and completed_at is not None and completed_at < started_at:
        raise ValueError("completed_at is before started_at")
    if sla_minutes is None:
        return False
    end = completed_at if completed_at is not None else now
    return end > sla_deadline(issued_at, sla_minutes)
