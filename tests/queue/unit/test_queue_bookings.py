from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mpp_queue.domain.bookings import (
    Slot,
    booking_blocked_until,
    check_in,
    generate_slots,
    is_no_show,
    quota_left,
)
from mpp_queue.domain.numbering import SUPPORTED_TIMEZONES

DAY = date(2026, 5, 11)
WIB = ZoneInfo("Asia/Jakarta")
SLOT = datetime(2026, 5, 11, 9, 0, tzinfo=WIB)
ONE_SECOND = timedelta(seconds=1)


# --- slots ---


def test_slots_cover_opening_periods_and_skip_the_break():
    slots = generate_slots(
        DAY, "Asia/Jakarta", [(time(8), time(12)), (time(13), time(15))], 30, capacity=4
    )
    starts = [s.start.strftime("%H:%M") for s in slots]
    assert starts[:3] == ["08:00", "08:30", "09:00"]
    assert "12:00" not in starts and "12:30" not in starts
    assert starts[-1] == "14:30"
    assert len(slots) == 8 + 4
    assert slots[0] == Slot(
        start=datetime(2026, 5, 11, 8, 0, tzinfo=WIB),
        end=datetime(2026, 5, 11, 8, 30, tzinfo=WIB),
        capacity=4,
    )


def test_a_partial_slot_at_closing_time_is_not_offered():
    slots = generate_slots(DAY, "Asia/Jakarta", [(time(8), time(9, 50))], 20, capacity=1)
    assert [s.start.time() for s in slots] == [
        time(8),
        time(8, 20),
        time(8, 40),
        time(9, 0),
        time(9, 20),
    ]
    assert slots[-1].end.time() == time(9, 40)


def test_period_shorter_than_a_slot_gives_no_slot():
    assert generate_slots(DAY, "Asia/Jakarta", [(time(8), time(8, 10))], 15, 1) == []


@pytest.mark.parametrize(
    "tz, utc_hour",
    [("Asia/Jakarta", 1), ("Asia/Makassar", 0), ("Asia/Jayapura", 23)],
)
def test_slots_are_aware_and_in_the_mall_zone(tz, utc_hour):
    first = generate_slots(DAY, tz, [(time(8), time(9))], 60, 1)[0]
    assert first.start.utcoffset() is not None
    assert first.start.astimezone(UTC).hour == utc_hour
    assert first.start.date() == DAY  # local date, even where the UTC date is the day before


@pytest.mark.parametrize(
    "opening, slot_minutes, capacity, tz",
    [
        ([(time(9), time(8))], 30, 1, "Asia/Jakarta"),
        ([(time(9), time(9))], 30, 1, "Asia/Jakarta"),
        ([(time(8), time(12)), (time(11), time(14))], 30, 1, "Asia/Jakarta"),
        ([(time(13), time(14)), (time(8), time(12))], 30, 1, "Asia/Jakarta"),
        ([(time(8, tzinfo=UTC), time(12))], 30, 1, "Asia/Jakarta"),
        ([(time(8), time(12))], 0, 1, "Asia/Jakarta"),
        ([(time(8), time(12))], 30, 0, "Asia/Jakarta"),
        ([(time(8), time(12))], 30, 1, "UTC"),
    ],
)
def test_generate_slots_rejects_bad_configuration(opening, slot_minutes, capacity, tz):
    with pytest.raises(ValueError):
        generate_slots(DAY, tz, opening, slot_minutes, capacity)


def test_adjacent_periods_are_allowed():
    slots = generate_slots(DAY, "Asia/Jakarta", [(time(8), time(9)), (time(9), time(10))], 60, 1)
    assert len(slots) == 2


@given(
    tz=st.sampled_from(SUPPORTED_TIMEZONES),
    open_minute=st.integers(0, 600),
    length=st.integers(1, 600),
    slot_minutes=st.integers(1, 120),
)
def test_slots_never_overlap_and_stay_within_opening(tz, open_minute, length, slot_minutes):
    opens = time(open_minute // 60, open_minute % 60)
    close_minute = min(open_minute + length, 23 * 60 + 59)
    closes = time(close_minute // 60, close_minute % 60)
    slots = generate_slots(DAY, tz, [(opens, closes)], slot_minutes, 2)
    assert len(slots) == (close_minute - open_minute) // slot_minutes
    for a, b in zip(slots, slots[1:], strict=False):
        assert a.end == b.start
    for s in slots:
        assert s.start.time() >= opens and s.end.time() <= closes
        assert s.end - s.start == timedelta(minutes=slot_minutes)


# --- check-in window ---


@pytest.mark.parametrize(
    "offset, expected",
    [
        (-timedelta(minutes=30) - ONE_SECOND, "too_early"),
        (-timedelta(minutes=30), "on_time"),  # opening edge is inclusive
        (timedelta(0), "on_time"),
        (timedelta(minutes=15), "on_time"),  # closing edge is inclusive
        (timedelta(minutes=15) + ONE_SECOND, "late"),
        (timedelta(hours=3), "late"),
    ],
)
def test_check_in_window_edges(offset, expected):
    assert check_in(SLOT, SLOT + offset, early_minutes=30, late_minutes=15) == expected


def test_check_in_compares_instants_not_wall_clocks():
    # 08:45 WIT is 06:45 WIB: two hours early for a 09:00 WIB slot.
    now = datetime(2026, 5, 11, 8, 45, tzinfo=ZoneInfo("Asia/Jayapura"))
    assert check_in(SLOT, now, early_minutes=30, late_minutes=15) == "too_early"


def test_zero_width_window_accepts_only_the_slot_start():
    assert check_in(SLOT, SLOT, early_minutes=0, late_minutes=0) == "on_time"
    assert check_in(SLOT, SLOT + ONE_SECOND, early_minutes=0, late_minutes=0) == "late"
    assert check_in(SLOT, SLOT - ONE_SECOND, early_minutes=0, late_minutes=0) == "too_early"


@pytest.mark.parametrize("early, late", [(-1, 15), (30, -1)])
def test_check_in_rejects_negative_windows(early, late):
    with pytest.raises(ValueError):
        check_in(SLOT, SLOT, early_minutes=early, late_minutes=late)


def test_check_in_rejects_naive_datetimes():
    with pytest.raises(ValueError):
        check_in(SLOT, datetime(2026, 5, 11, 9), early_minutes=30, late_minutes=15)


@pytest.mark.parametrize(
    "offset, checked_in, expected",
    [
        (timedelta(minutes=15), False, False),  # last on-time instant
        (timedelta(minutes=15) + ONE_SECOND, False, True),
        (timedelta(minutes=15) + ONE_SECOND, True, False),
        (-timedelta(minutes=5), False, False),
        (timedelta(hours=5), True, False),
    ],
)
def test_is_no_show_edges(offset, checked_in, expected):
    assert is_no_show(SLOT, SLOT + offset, 15, checked_in) is expected


@given(offset_s=st.integers(-7200, 7200), late=st.integers(0, 60))
def test_late_and_no_show_begin_at_the_same_instant(offset_s, late):
    now = SLOT + timedelta(seconds=offset_s)
    assert (check_in(SLOT, now, early_minutes=30, late_minutes=late) == "late") == is_no_show(
        SLOT, now, late, checked_in=False
    )


# --- no-show penalty ---

NOW = datetime(2026, 5, 11, 9, 0, tzinfo=WIB)


def days_ago(*days: float) -> list[datetime]:
    return [NOW - timedelta(days=d) for d in days]


def test_two_no_shows_do_not_block():
    assert booking_blocked_until(days_ago(1, 2), NOW) is None


def test_three_no_shows_in_the_window_block_until_the_last_plus_block_days():
    until = booking_blocked_until(days_ago(1, 10, 20), NOW, block_days=7)
    assert until == NOW - timedelta(days=1) + timedelta(days=7)


def test_input_order_does_not_matter():
    assert booking_blocked_until(days_ago(20, 1, 10), NOW) == booking_blocked_until(
        days_ago(1, 10, 20), NOW
    )


@pytest.mark.parametrize(
    "span, blocked",
    [
        (timedelta(days=30) - ONE_SECOND, True),  # first and third just inside 30 days
        (timedelta(days=30), False),  # exactly 30 days apart: the window is (t - 30 d, t]
    ],
)
def test_window_edge(span, blocked):
    last = NOW - timedelta(hours=1)
    times = [last - span, last - span / 2, last]
    until = booking_blocked_until(times, NOW, window_days=30, block_days=30)
    assert (until is not None) is blocked


@pytest.mark.parametrize(
    "elapsed, blocked",
    [
        (timedelta(days=7) - ONE_SECOND, True),
        (timedelta(days=7), False),  # the block ends exactly at last + block_days
    ],
)
def test_block_end_edge(elapsed, blocked):
    last = NOW - elapsed
    times = [last - timedelta(days=2), last - timedelta(days=1), last]
    assert (booking_blocked_until(times, NOW, block_days=7) is not None) is blocked


def test_block_lasts_its_full_length_even_when_an_old_no_show_leaves_the_window():
    # No-shows 33, 13 and 4 days ago (within 30 days of each other at the third one).
    times = days_ago(29 + 4, 13, 4)
    assert booking_blocked_until(times, NOW, block_days=30) == NOW - timedelta(days=4) + timedelta(
        days=30
    )


def test_no_shows_that_triggered_a_block_do_not_count_again():
    # Blocked by the first three; the fourth alone, a week after the block ended, does not re-block.
    first_three = days_ago(60, 59, 58)  # block until 28 days ago
    assert booking_blocked_until([*first_three, *days_ago(1)], NOW) is None
    # Three more after the block, though, do.
    assert booking_blocked_until([*first_three, *days_ago(3, 2, 1)], NOW) == NOW + timedelta(
        days=29
    )


def test_a_block_wipes_the_slate_even_while_old_no_shows_are_inside_the_window():
    # Three no-shows 20, 19 and 18 days ago blocked booking for 5 days (until 13 days ago). One more
    # no-show 2 days ago is within 30 days of all of them, but they are spent: no new block.
    times = days_ago(20, 19, 18, 2)
    assert booking_blocked_until(times, NOW, block_days=5) is None
    assert booking_blocked_until([*times, *days_ago(1.5, 1)], NOW, block_days=5) == NOW + timedelta(
        days=4
    )


def test_no_shows_on_the_same_day_count_separately():
    same_time = NOW - timedelta(hours=2)
    assert booking_blocked_until([same_time] * 3, NOW) == same_time + timedelta(days=30)


def test_future_no_shows_are_ignored():
    times = [*days_ago(2, 1), NOW + timedelta(days=1)]
    assert booking_blocked_until(times, NOW) is None


@pytest.mark.parametrize("threshold, blocked", [(1, True), (2, True), (3, False)])
def test_threshold_is_configurable(threshold, blocked):
    until = booking_blocked_until(days_ago(1, 2), NOW, threshold=threshold)
    assert (until is not None) is blocked


@pytest.mark.parametrize("kwargs", [{"threshold": 0}, {"window_days": 0}, {"block_days": 0}])
def test_penalty_arguments_are_checked(kwargs):
    with pytest.raises(ValueError):
        booking_blocked_until([], NOW, **kwargs)


def test_penalty_rejects_naive_times():
    with pytest.raises(ValueError):
        booking_blocked_until([datetime(2026, 5, 1)], NOW)


# --- quota ---


@pytest.mark.parametrize(
    "quota, booked, left",
    [(400, 0, 400), (400, 399, 1), (400, 400, 0), (400, 401, 0), (0, 0, 0)],
)
def test_quota_left(quota, booked, left):
    assert quota_left(quota, booked) == left


@pytest.mark.parametrize("quota, booked", [(-1, 0), (10, -1)])
def test_quota_rejects_negative_numbers(quota, booked):
    with pytest.raises(ValueError):
        quota_left(quota, booked)
