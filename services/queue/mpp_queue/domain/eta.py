"""Estimated wait for a virtual ticket.

Formula (docs/queue-rules.md, "Estimated wait")::

    minutes = ceil((position + 0.5) * median(last N serving durations) / open_counters / 60)

``position`` is the number of tickets that will be called before this one (0 = next; see
``calling.position_of``). The ``+ 0.5`` stands for the half service a busy counter still has to
finish before it is free; a day-long simulation in the unit tests shows it removes most of the bias
of the plain ``position * median / counters`` while keeping the error about the same. The median,
not the mean, because one ticket left open over lunch must not double everyone's estimate.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence

RECENT_SAMPLE_SIZE = 20
"""How many of the most recent serving durations the median is taken over: enough to smooth one
slow citizen, few enough to follow a change of pace (a new officer, a system outage) within an
hour."""


def typical_service_seconds(
    recent_service_seconds: Sequence[float],
    *,
    default_service_seconds: float = 300,
    sample_size: int = RECENT_SAMPLE_SIZE,
) -> float:
    """Median of the last ``sample_size`` positive durations; the default before anyone is served.

    Non-positive durations come from clock glitches or tickets closed by mistake and are ignored.
    """
    if sample_size < 1:
        raise ValueError("sample_size must be at least 1")
    valid = [s for s in recent_service_seconds[-sample_size:] if s > 0]
    return statistics.median(valid) if valid else float(default_service_seconds)


def estimate_wait_minutes(
    position: int,
    recent_service_seconds: Sequence[float],
    open_counters: int,
    *,
    default_service_seconds: float = 300,
    sample_size: int = RECENT_SAMPLE_SIZE,
) -> int | None:
    """Whole minutes (rounded up) until the ticket is called; ``None`` when no counter is open.

    ``None`` rather than infinity or a made-up number: the ticket page then says "no counter is open
    for this service" instead of a wait nobody can promise.
    """
    if position < 0:
        raise ValueError("position must not be negative")
    if default_service_seconds <= 0:
        raise ValueError("default_service_seconds must be positive")
    if open_counters <= 0:
        return None
    typical = typical_service_seconds(
        recent_service_seconds,
        default_service_seconds=default_service_seconds,
        sample_size=sample_size,
    )
    minutes = (position + 0.5) * typical / open_counters / 60
    # Round away float noise first, so 2.0000000001 minutes is not shown as 3.
    return math.ceil(round(minutes, 9))
