"""Online booking: slots, check-in window, no-shows and the no-show penalty, daily quota.

All windows are closed intervals on both edges (arriving exactly ``early_minutes`` before the slot,
or exactly ``late_minutes`` after its start, is on time), so that "late" and "no-show" begin at the
same instant and a citizen is never both on time and a no-show.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Literal

from .numbering import require_aware, zone

CheckIn = Literal["too_early", "on_time", "late"]

DEFAULT_NO_SHOW_THRESHOLD = 3
DEFAULT_NO_SHOW_WINDOW_DAYS = 30
DEFAULT_BLOCK_DAYS = 30
"""As long as the window: the no-shows that caused a block have left the window when it ends."""


@dataclass(frozen=True)
class Slot:
    """One bookable time slot of one service on one day, in the mall's zone."""

    start: datetime
    end: datetime
    capacity: int


def generate_slots(
    day: date,
    tz: str,
    opening: list[tuple[time, time]],
    slot_minutes: int,
    capacity: int,
) -> list[Slot]:
    """Cut each opening period of ``day`` into whole slots of ``slot_minutes``.

    ``opening`` lists local, naive ``(open, close)`` times; a break (istirahat) is the gap between
    two periods. A remainder shorter than a slot at the end of a period is not offered: a citizen
    must never be booked into time the counter is closed.
    """
    if slot_minutes <= 0:
        raise ValueError("slot_minutes must be positive")
    if capacity < 1:
        raise ValueError("capacity must be at least 1")
    tzinfo = zone(tz)
    length = timedelta(minutes=slot_minutes)
    slots: list[Slot] = []
    previous_close: time | None = None
    for opens, closes in opening:
        if opens.tzinfo is not None or closes.tzinfo is not None:
            raise ValueError("opening times are local wall-clock times, without tzinfo")
        if opens >= closes:
            raise ValueError("an opening period must open before it closes")
        if previous_close is not None and opens < previous_close:
            raise ValueError("opening periods must be in order and must not overlap")
        previous_close = closes
        start = datetime.combine(day, opens, tzinfo=tzinfo)
        close = datetime.combine(day, closes, tzinfo=tzinfo)
        while start + length <= close:
            slots.append(Slot(start=start, end=start + length, capacity=capacity))
            start += length
    return slots


def check_in(
    slot_start: datetime, now: datetime, *, early_minutes: int, late_minutes: int
) -> CheckIn:
    """Classify an arrival against the window ``[start - early, start + late]``.

    ``too_early``: come back later (the slot is held). ``late``: the booking is lost and the citizen
    joins the normal line as a walk-in, which is fairer to those already waiting than a jump.
    """
    require_aware(slot_start, "slot_start")
    require_aware(now, "now")
    if early_minutes < 0 or late_minutes < 0:
        raise ValueError("early_minutes and late_minutes must not be negative")
    if now < slot_start - timedelta(minutes=early_minutes):
        return "too_early"
    if now > slot_start + timedelta(minutes=late_minutes):
        return "late"
    return "on_time"


def is_no_show(slot_start: datetime, now: datetime, late_minutes: int, checked_in: bool) -> bool:
    """A booking is a no-show once its check-in window has closed without a check-in."""
    require_aware(slot_start, "slot_start")
    require_aware(now, "now")
    if late_minutes < 0:
        raise ValueError("late_minutes must not be negative")
    return not checked_in and now > slot_start + timedelta(minutes=late_minutes)


def booking_blocked_until(
    no_show_times: Sequence[datetime],
    now: datetime,
    *,
    threshold: int = DEFAULT_NO_SHOW_THRESHOLD,
    window_days: int = DEFAULT_NO_SHOW_WINDOW_DAYS,
    block_days: int = DEFAULT_BLOCK_DAYS,
) -> datetime | None:
    """When a citizen may book again, or ``None`` if they may book now.

    Following Disdukcapil Denpasar's practice (blocked after 3 missed bookings): ``threshold``
    no-shows within ``window_days`` block booking until the last of them + ``block_days``. The
    window is measured back from each no-show (``(t - window, t]``), so a block, once earned, lasts
    its full length; the no-shows that triggered a block are then spent and do not count towards the
    next one. Blocked means strictly before the returned instant. No-shows after ``now`` are
    ignored.
    """
    require_aware(now, "now")
    if threshold < 1 or window_days < 1 or block_days < 1:
        raise ValueError("threshold, window_days and block_days must be at least 1")
    window = timedelta(days=window_days)
    counted: list[datetime] = []
    blocked_until: datetime | None = None
    for t in sorted(require_aware(t, "no_show_times") for t in no_show_times):
        if t > now:
            break
        counted = [c for c in counted if c > t - window]
        counted.append(t)
        if len(counted) >= threshold:
            blocked_until = t + timedelta(days=block_days)
            counted = []
    if blocked_until is not None and blocked_until > now:
        return blocked_until
    return None


def quota_left(daily_quota: int, booked_today: int) -> int:
    """Bookings still available today; never negative, even if an operator lowered the quota."""
    if daily_quota < 0 or booked_today < 0:
        raise ValueError("daily_quota and booked_today must not be negative")
    return max(0, daily_quota - booked_today)
