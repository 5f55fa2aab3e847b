from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mpp_queue.domain.calling import (
    PRIORITY_CATEGORIES,
    Candidate,
    Choice,
    call_order,
    choose_next,
    position_of,
)
from mpp_queue.domain.tickets import transfer_queued_at

NOW = datetime(2026, 5, 11, 3, 0, tzinfo=UTC)  # 10:00 WIB


def at(minutes: float) -> datetime:
    return NOW + timedelta(minutes=minutes)


def regular(tid: str, queued: float) -> Candidate:
    return Candidate(ticket_id=tid, service_id="ktp", queued_at=at(queued))


def prio(tid: str, queued: float, category: str = "elderly") -> Candidate:
    return Candidate(ticket_id=tid, service_id="ktp", queued_at=at(queued), priority=category)


def booked(tid: str, slot: float, queued: float = -5, checked_in: bool = True) -> Candidate:
    return Candidate(
        ticket_id=tid,
        service_id="ktp",
        queued_at=at(queued),
        booked_slot_start=at(slot),
        checked_in=checked_in,
    )


def pick(candidates, streak=0, max_streak=3, now=NOW):
    return choose_next(candidates, now=now, priority_streak=streak, max_priority_streak=max_streak)


def test_nobody_waiting_gives_none():
    assert pick([]) is None


def test_longest_waiting_regular_first():
    choice = pick([regular("b", -5), regular("a", -20), regular("c", -1)])
    assert choice == Choice(regular("a", -20), 0)


def test_ties_on_queued_at_break_by_ticket_id():
    assert pick([regular("t2", -5), regular("t1", -5)]).candidate.ticket_id == "t1"


@pytest.mark.parametrize("category", PRIORITY_CATEGORIES)
def test_priority_before_regular_and_streak_increments(category):
    choice = pick([regular("r", -60), prio("p", -1, category)], streak=1)
    assert choice.candidate.ticket_id == "p"
    assert choice.priority_streak == 2


def test_after_max_streak_one_regular_is_served_and_streak_resets():
    choice = pick([regular("r", -1), prio("p", -60)], streak=3, max_streak=3)
    assert choice == Choice(regular("r", -1), 0)


def test_streak_just_below_max_still_serves_priority():
    assert (
        pick([regular("r", -1), prio("p", -60)], streak=2, max_streak=3).candidate.ticket_id == "p"
    )


def test_with_no_regular_waiting_priority_continues_past_the_max():
    choice = pick([prio("p", -1)], streak=3, max_streak=3)
    assert choice == Choice(prio("p", -1), 4)


def test_regular_call_resets_streak_even_when_no_priority_waits():
    assert pick([regular("r", -1)], streak=2).priority_streak == 0


def test_booked_slot_that_has_started_goes_first_and_keeps_the_streak():
    candidates = [prio("p", -60), regular("r", -90), booked("b", slot=0)]
    assert pick(candidates, streak=2) == Choice(booked("b", slot=0), 2)


def test_earliest_started_slot_first():
    candidates = [
        booked("late-slot", slot=-5, queued=-30),
        booked("early-slot", slot=-15, queued=-1),
    ]
    assert pick(candidates).candidate.ticket_id == "early-slot"


@pytest.mark.parametrize(
    "slot, checked_in, callable_",
    [
        (0, True, True),
        (-10, True, True),
        (0.01, True, False),
        (30, True, False),
        (-10, False, False),
    ],
)
def test_booked_ticket_waits_for_its_slot_and_its_check_in(slot, checked_in, callable_):
    choice = pick([booked("b", slot=slot, checked_in=checked_in)])
    assert (choice is not None) == callable_


def test_booking_held_for_a_future_slot_does_not_block_the_line():
    assert pick([booked("b", slot=10), regular("r", -1)]).candidate.ticket_id == "r"


def test_a_day_of_calls_never_starves_the_regular_line():
    """Ten elderly citizens arrive first; with max streak 2 every third call is regular."""
    line = [prio(f"p{i}", -100 + i) for i in range(10)] + [
        regular(f"r{i}", -50 + i) for i in range(4)
    ]
    streak, called = 0, []
    while (choice := pick(line, streak=streak, max_streak=2)) is not None:
        called.append(choice.candidate.ticket_id)
        streak = choice.priority_streak
        line.remove(choice.candidate)
    assert called == [
        "p0",
        "p1",
        "r0",
        "p2",
        "p3",
        "r1",
        "p4",
        "p5",
        "r2",
        "p6",
        "p7",
        "r3",
        "p8",
        "p9",
    ]


def test_transferred_citizen_is_sorted_by_original_arrival():
    original_issue = at(-45)
    transferred = Candidate(
        ticket_id="x", service_id="paspor", queued_at=transfer_queued_at(original_issue, NOW)
    )
    line = [regular("r1", -30), regular("r2", -10), transferred]
    assert pick(line).candidate.ticket_id == "x"


@pytest.mark.parametrize(
    "kwargs",
    [
        {"priority": "vip"},
        {"queued_at": datetime(2026, 5, 11, 10)},
        {"booked_slot_start": datetime(2026, 5, 11, 10)},
    ],
)
def test_candidate_validation(kwargs):
    fields = {"ticket_id": "t", "service_id": "s", "queued_at": NOW} | kwargs
    with pytest.raises(ValueError):
        Candidate(**fields)


@pytest.mark.parametrize("streak, max_streak", [(-1, 3), (0, 0)])
def test_streak_arguments_are_checked(streak, max_streak):
    with pytest.raises(ValueError):
        pick([regular("r", 0)], streak=streak, max_streak=max_streak)


def test_naive_now_is_rejected():
    with pytest.raises(ValueError):
        pick([regular("r", 0)], now=datetime(2026, 5, 11, 10))


candidates_strategy = st.lists(
    st.builds(
        Candidate,
        ticket_id=st.text(alphabet="abcdef0123", min_size=1, max_size=4),
        service_id=st.just("s"),
        queued_at=st.integers(-120, 0).map(at),
        priority=st.none() | st.sampled_from(PRIORITY_CATEGORIES),
        booked_slot_start=st.none() | st.integers(-60, 60).map(at),
        checked_in=st.booleans(),
    ),
    max_size=15,
    unique_by=lambda c: c.ticket_id,
)


@given(candidates=candidates_strategy, data=st.data())
def test_choice_does_not_depend_on_input_order(candidates, data):
    shuffled = data.draw(st.permutations(candidates))
    streak = data.draw(st.integers(0, 5))
    assert pick(candidates, streak=streak) == pick(shuffled, streak=streak)


@given(candidates=candidates_strategy, streak=st.integers(0, 4), max_streak=st.integers(1, 4))
def test_call_order_equals_repeated_choose_next(candidates, streak, max_streak):
    expected, line, s = [], list(candidates), streak
    while (choice := pick(line, streak=s, max_streak=max_streak)) is not None:
        expected.append(choice.candidate)
        line.remove(choice.candidate)
        s = choice.priority_streak
    order = call_order(candidates, now=NOW, priority_streak=streak, max_priority_streak=max_streak)
    assert order == expected


@given(candidates=candidates_strategy, max_streak=st.integers(1, 4))
def test_regular_never_waits_more_than_max_streak_priority_calls(candidates, max_streak):
    order = call_order(candidates, now=NOW, priority_streak=0, max_priority_streak=max_streak)
    run = 0
    regular_left = sum(1 for c in order if c.booked_slot_start is None and c.priority is None)
    for c in order:
        if c.booked_slot_start is not None:
            continue
        if c.priority is None:
            regular_left -= 1
            run = 0
        else:
            run += 1
            if regular_left:
                assert run <= max_streak


def test_position_of():
    line = [prio("p", -1), regular("r1", -30), regular("r2", -10), booked("b", slot=20)]
    kwargs = {"now": NOW, "priority_streak": 0, "max_priority_streak": 3}
    assert position_of("p", line, **kwargs) == 0
    assert position_of("r1", line, **kwargs) == 1
    assert position_of("r2", line, **kwargs) == 2
    assert position_of("b", line, **kwargs) is None
    assert position_of("missing", line, **kwargs) is None
