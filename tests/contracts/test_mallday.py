"""The mall's day, one definition for queue, payment and rating: local midnight to local midnight
in MALL_TIMEZONE, never the server's UTC day."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from mpp_contracts.mallday import SUPPORTED_TIMEZONES, day_window, local_midnight, mall_day

OFFSETS = {"Asia/Jakarta": 7, "Asia/Makassar": 8, "Asia/Jayapura": 9}


@pytest.mark.parametrize("tz", SUPPORTED_TIMEZONES)
def test_a_day_runs_from_local_midnight_to_the_next(tz):
    start, end = day_window(date(2026, 3, 1), ZoneInfo(tz))

    assert start == datetime(2026, 2, 28, 24 - OFFSETS[tz], tzinfo=UTC)
    assert end - start == timedelta(days=1)
    assert start == local_midnight(date(2026, 3, 1), ZoneInfo(tz))
    assert end == local_midnight(date(2026, 3, 2), ZoneInfo(tz))


@pytest.mark.parametrize("tz", SUPPORTED_TIMEZONES)
def test_the_mall_day_changes_at_local_midnight_not_utc(tz):
    start, end = day_window(date(2026, 3, 1), ZoneInfo(tz))

    assert mall_day(start, ZoneInfo(tz)) == date(2026, 3, 1)
    assert mall_day(start - timedelta(microseconds=1), ZoneInfo(tz)) == date(2026, 2, 28)
    assert mall_day(end, ZoneInfo(tz)) == date(2026, 3, 2)
    # a WIT mall is already in its next day at 15:00 UTC
    assert mall_day(datetime(2026, 3, 1, 15, tzinfo=UTC), ZoneInfo("Asia/Jayapura")) == date(
        2026, 3, 2
    )
