from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mpp_rating.domain.complaints import (
    ComplaintAction,
    ComplaintState,
    ComplaintStatus,
    InvalidTransition,
    apply,
    dispute_due,
    first_response_due,
    open_complaint,
    overdue,
    resolution_due,
    should_open_complaint,
)

OPENED = datetime(2024, 6, 3, 1, 0, tzinfo=UTC)
DAY = timedelta(days=1)
TICK = timedelta(microseconds=1)


@pytest.mark.parametrize(
    ("stars", "flagged", "expected"),
    [(1, False, True), (2, False, True), (3, False, False), (5, False, False), (5, True, True)],
)
def test_should_open_complaint(stars: int, flagged: bool, expected: bool) -> None:
    assert should_open_complaint(stars, flagged) is expected


def test_deadlines_are_calendar_days_from_opening() -> None:
    # Friday 2024-06-07 01:00 UTC + 3 days → Monday; weekends count.
    friday = datetime(2024, 6, 7, 1, 0, tzinfo=UTC)
    assert first_response_due(friday) == datetime(2024, 6, 10, 1, 0, tzinfo=UTC)
    assert resolution_due(friday) == datetime(2024, 6, 12, 1, 0, tzinfo=UTC)
    assert dispute_due(friday) == datetime(2024, 6, 21, 1, 0, tzinfo=UTC)


def test_happy_path_open_respond_resolve() -> None:
    state = open_complaint(OPENED)
    state = apply(state, "respond", OPENED + DAY)
    assert state.status is ComplaintStatus.RESPONDED
    assert state.responded_at == OPENED + DAY
    state = apply(state, ComplaintAction.RESOLVE, OPENED + 2 * DAY)
    assert state.status is ComplaintStatus.RESOLVED
    assert state.resolved_at == OPENED + 2 * DAY
    assert overdue(state, OPENED + 30 * DAY) is None


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (OPENED + 3 * DAY, None),
        (OPENED + 3 * DAY + TICK, "first_response"),
        (OPENED + 6 * DAY, "first_response"),
    ],
)
def test_open_complaint_is_overdue_after_first_response_deadline(
    now: datetime, expected: str | None
) -> None:
    assert overdue(open_complaint(OPENED), now) == expected


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (OPENED + 4 * DAY, None),
        (OPENED + 5 * DAY, None),
        (OPENED + 5 * DAY + TICK, "resolution"),
    ],
)
def test_responded_complaint_is_held_to_resolution_deadline(
    now: datetime, expected: str | None
) -> None:
    responded = apply(open_complaint(OPENED), "respond", OPENED + DAY)
    assert overdue(responded, now) == expected


def test_timer_escalates_an_unanswered_complaint() -> None:
    now = OPENED + 3 * DAY + TICK
    state = apply(open_complaint(OPENED), "escalate", now)
    assert state.status is ComplaintStatus.ESCALATED
    assert (state.escalated_at, state.escalated_for) == (now, "first_response")
    assert overdue(state, now + 30 * DAY) is None


def test_timer_escalates_a_responded_complaint_past_resolution() -> None:
    responded = apply(open_complaint(OPENED), "respond", OPENED + DAY)
    state = apply(responded, "escalate", OPENED + 6 * DAY)
    assert (state.status, state.escalated_for) == (ComplaintStatus.ESCALATED, "resolution")


@pytest.mark.parametrize("now", [OPENED + DAY, OPENED + 3 * DAY])
def test_escalating_before_a_deadline_passes_is_invalid(now: datetime) -> None:
    with pytest.raises(InvalidTransition):
        apply(open_complaint(OPENED), "escalate", now)


def test_dispute_extends_the_resolution_deadline_to_14_days() -> None:
    responded = apply(open_complaint(OPENED), "respond", OPENED + DAY)
    disputed = apply(responded, "dispute", OPENED + 2 * DAY)

    assert disputed.status is ComplaintStatus.RESPONDED
    assert disputed.disputed and disputed.disputed_at == OPENED + 2 * DAY
    assert disputed.closing_due == OPENED + 14 * DAY
    assert overdue(disputed, OPENED + 10 * DAY) is None
    assert overdue(disputed, OPENED + 14 * DAY) is None
    assert overdue(disputed, OPENED + 14 * DAY + TICK) == "dispute"
    with pytest.raises(InvalidTransition):
        apply(disputed, "escalate", OPENED + 10 * DAY)
    escalated = apply(disputed, "escalate", OPENED + 15 * DAY)
    assert escalated.escalated_for == "dispute"


def test_disputed_open_complaint_still_owes_a_first_response() -> None:
    disputed = apply(open_complaint(OPENED), "dispute", OPENED + DAY)
    assert overdue(disputed, OPENED + 4 * DAY) == "first_response"


@pytest.mark.parametrize(
    ("setup", "action"),
    [
        ([], "resolve"),
        (["respond"], "respond"),
        (["dispute"], "dispute"),
        (["respond", "resolve"], "respond"),
        (["respond", "resolve"], "resolve"),
        (["respond", "resolve"], "dispute"),
        (["respond", "resolve"], "escalate"),
        ([], "reopen"),
    ],
)
def test_invalid_transitions_raise(setup: list[str], action: str) -> None:
    state = open_complaint(OPENED)
    for step in setup:
        state = apply(state, step, OPENED + DAY)
    with pytest.raises(InvalidTransition):
        apply(state, action, OPENED + 2 * DAY)


def test_escalated_is_terminal() -> None:
    escalated = apply(open_complaint(OPENED), "escalate", OPENED + 4 * DAY)
    for action in ComplaintAction:
        with pytest.raises(InvalidTransition):
            apply(escalated, action, OPENED + 5 * DAY)


def test_naive_times_are_rejected() -> None:
    with pytest.raises(ValueError):
        open_complaint(datetime(2024, 6, 3, 8, 0))
    with pytest.raises(ValueError):
        apply(open_complaint(OPENED), "respond", datetime(2024, 6, 4, 8, 0))


@given(
    steps=st.lists(
        st.tuples(
            st.sampled_from(list(ComplaintAction)),
            st.integers(min_value=0, max_value=20 * 24 * 3600),
        ),
        max_size=8,
    )
)
def test_any_action_sequence_keeps_the_machine_consistent(
    steps: list[tuple[ComplaintAction, int]],
) -> None:
    state: ComplaintState = open_complaint(OPENED)
    for action, seconds in sorted(steps, key=lambda step: step[1]):
        now = OPENED + timedelta(seconds=seconds)
        before = state
        try:
            state = apply(state, action, now)
        except InvalidTransition:
            assert state == before
            continue
        if state.status is ComplaintStatus.ESCALATED:
            assert before.status in (ComplaintStatus.OPEN, ComplaintStatus.RESPONDED)
            assert state.escalated_for == overdue(before, now) is not None
        if state.status is ComplaintStatus.RESOLVED:
            assert state.responded_at is not None
