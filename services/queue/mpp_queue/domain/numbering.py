"""Ticket numbers and the mall's local day.

Numbers restart every morning, so "which day is it" must be the mall's local day, not the server's
(UTC) day: a WIT mall (UTC+9) starts its day at 15:00 UTC the day before. Uniqueness of the sequence
across kiosks is the database's job (one counter row per service line and day); this module only
names the day and formats the number.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from zoneinfo import ZoneInfo

from mpp_contracts import mallday
from mpp_contracts.mallday import SUPPORTED_TIMEZONES

_PREFIX = re.compile(r"[A-Z]{1,3}")


def zone(tz: str) -> ZoneInfo:
    """The ``ZoneInfo`` of one of Indonesia's three zones; others are a configuration error."""
    if tz not in SUPPORTED_TIMEZONES:
        raise ValueError(f"unsupported time zone {tz!r}; expected one of {SUPPORTED_TIMEZONES}")
    return ZoneInfo(tz)


def require_aware(value: datetime, name: str = "datetime") -> datetime:
    """Reject naive datetimes: a naive time silently means "the server's zone", a bug here."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware")
    return value


def mall_day(now: datetime, tz: str) -> date:
    """The mall's local date at instant ``now``; ticket numbers reset at local midnight."""
    return mallday.mall_day(require_aware(now, "now"), zone(tz))


def day_bounds(day: date, tz: str) -> tuple[datetime, datetime]:
    """Start (inclusive) and end (exclusive) of a mall day as aware datetimes, for range queries."""
    return mallday.day_window(day, zone(tz))


def validate_prefix(prefix: str) -> str:
    """Accept 1-3 uppercase ASCII letters: short enough to read aloud and fit a display board."""
    if not isinstance(prefix, str) or not _PREFIX.fullmatch(prefix):
        raise ValueError("prefix must be 1-3 uppercase letters A-Z")
    return prefix


def format_number(prefix: str, seq: int) -> str:
    """``('A', 1) -> 'A-001'``: padded to three digits so boards align; longer sequences grow."""
    validate_prefix(prefix)
    if isinstance(seq, bool) or not isinstance(seq, int) or seq < 1:
        raise ValueError("seq must be a positive integer")
    return f"{prefix}-{seq:03d}"
