from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mpp_queue.domain.numbering import (
    SUPPORTED_TIMEZONES,
    day_bounds,
    format_number,
    mall_day,
    validate_prefix,
)

# Local midnight of 10 May 2026 expressed in UTC, per zone (WIB +7, WITA +8, WIT +9).
MIDNIGHT_UTC = {
    "Asia/Jakarta": datetime(2026, 5, 9, 17, 0, tzinfo=UTC),
    "Asia/Makassar": datetime(2026, 5, 9, 16, 0, tzinfo=UTC),
    "Asia/Jayapura": datetime(2026, 5, 9, 15, 0, tzinfo=UTC),
}


def test_supported_timezones_are_the_three_indonesian_zones():
    assert SUPPORTED_TIMEZONES == ("Asia/Jakarta", "Asia/Makassar", "Asia/Jayapura")


@pytest.mark.parametrize("tz", SUPPORTED_TIMEZONES)
def test_midnight_rollover_in_each_zone(tz):
    midnight = MIDNIGHT_UTC[tz]
    assert mall_day(midnight - timedelta(microseconds=1), tz) == date(2026, 5, 9)
    assert mall_day(midnight, tz) == date(2026, 5, 10)
    assert mall_day(midnight + timedelta(hours=23, minutes=59, seconds=59), tz) == date(2026, 5, 10)
    assert mall_day(midnight + timedelta(hours=24), tz) == date(2026, 5, 11)


def test_same_instant_is_a_different_day_in_different_zones():
    instant = datetime(2026, 5, 9, 16, 30, tzinfo=UTC)  # 23:30 WIB, 00:30 WITA, 01:30 WIT
    assert mall_day(instant, "Asia/Jakarta") == date(2026, 5, 9)
    assert mall_day(instant, "Asia/Makassar") == date(2026, 5, 10)
    assert mall_day(instant, "Asia/Jayapura") == date(2026, 5, 10)


def test_mall_day_accepts_any_aware_input_zone():
    local = datetime(2026, 5, 10, 0, 5, tzinfo=ZoneInfo("Asia/Jayapura"))
    assert mall_day(local, "Asia/Jakarta") == date(2026, 5, 9)


def test_mall_day_rejects_naive_datetimes_and_unknown_zones():
    with pytest.raises(ValueError, match="aware"):
        mall_day(datetime(2026, 5, 10, 0, 5), "Asia/Jakarta")
    with pytest.raises(ValueError, match="unsupported"):
        mall_day(datetime(2026, 5, 10, tzinfo=UTC), "Europe/Amsterdam")


@pytest.mark.parametrize("tz", SUPPORTED_TIMEZONES)
def test_day_bounds_match_mall_day(tz):
    start, end = day_bounds(date(2026, 5, 10), tz)
    assert start == MIDNIGHT_UTC[tz]
    assert end - start == timedelta(days=1)
    assert mall_day(start, tz) == date(2026, 5, 10)
    assert mall_day(end - timedelta(microseconds=1), tz) == date(2026, 5, 10)
    assert mall_day(end, tz) == date(2026, 5, 11)


@given(
    instant=st.datetimes(
        min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
    ),
    tz=st.sampled_from(SUPPORTED_TIMEZONES),
)
def test_every_instant_falls_inside_the_bounds_of_its_mall_day(instant, tz):
    start, end = day_bounds(mall_day(instant, tz), tz)
    assert start <= instant < end


@pytest.mark.parametrize(
    "prefix, seq, expected",
    [
        ("A", 1, "A-001"),
        ("A", 12, "A-012"),
        ("B", 999, "B-999"),
        ("A", 1234, "A-1234"),
        ("KTP", 7, "KTP-007"),
    ],
)
def test_format_number(prefix, seq, expected):
    assert format_number(prefix, seq) == expected


@pytest.mark.parametrize("seq", [0, -1, True, 1.0, "1"])
def test_format_number_rejects_non_positive_or_non_int_sequences(seq):
    with pytest.raises(ValueError):
        format_number("A", seq)


@pytest.mark.parametrize("prefix", ["A", "AB", "XYZ"])
def test_valid_prefixes(prefix):
    assert validate_prefix(prefix) == prefix


@pytest.mark.parametrize("prefix", ["", "a", "ABCD", "A1", "A-", " A", "É", "A\n", None, 1])
def test_invalid_prefixes(prefix):
    with pytest.raises(ValueError):
        validate_prefix(prefix)
    with pytest.raises(ValueError):
        format_number(prefix, 1)
