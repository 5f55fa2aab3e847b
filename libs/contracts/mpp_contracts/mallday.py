"""The mall's day, defined once for every service.

A mall's day (ticket numbers, bookings, receipts, settlement, statistics) is its local calendar day
in ``MALL_TIMEZONE``: from local midnight (inclusive) to the next local midnight (exclusive), never
the server's UTC day (a WIT mall's day starts at 15:00 UTC the day before). Standard library only,
so a service's domain may import it (docs/architecture.md, "Boundaries").
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, tzinfo

SUPPORTED_TIMEZONES = ("Asia/Jakarta", "Asia/Makassar", "Asia/Jayapura")
"""WIB, WITA and WIT. None of them observes daylight saving time, so local days are always 24 h."""


def mall_day(now: datetime, tz: tzinfo) -> date:
    """The mall's local date at instant ``now``."""
    return now.astimezone(tz).date()


def local_midnight(day: date, tz: tzinfo) -> datetime:
    """The instant mall-local ``day`` starts."""
    return datetime.combine(day, time.min, tzinfo=tz)


def day_window(day: date, tz: tzinfo) -> tuple[datetime, datetime]:
    """Start (inclusive) and end (exclusive) of mall-local ``day``, for range queries."""
    return local_midnight(day, tz), local_midnight(day + timedelta(days=1), tz)
