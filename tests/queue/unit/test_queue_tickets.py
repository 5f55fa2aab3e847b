from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mpp_queue.domain.tickets import (
    LEGAL_STATES,
    TERMINAL_STATES,
    Action,
    InvalidTransition,
    TicketState,
    TicketStatus,
    apply,
    transfer_queued_at,
)

T0 = datetime(2026, 5, 11, 1, 0, tzinfo=UTC)  # 08:00 WIB
S = TicketStatus

# The rule table, written out independently of the module's own tables.
ALLOWED = {
    ("call", "waiting"): "called",
    ("recall", "called"): "called",
    ("start", "called"): "serving",
    ("complete", "serving"): "done",
    ("no_show", "called"): "no_show",
    ("cancel", "waiting"): "cancelled",
    ("cancel", "called"): "cancelled",
    ("transfer", "called"): "transferred",
    ("transfer", "serving"): "transferred",
}
ALL_PAIRS = [(a.value, s.value) for a in Action for s in TicketStatus]
FORBIDDEN = [pair for pair in ALL_PAIRS if pair not in ALLOWED]


def state_in(status: str, call_count: int | None = None) -> TicketState:
    """A plausible state for ``status`` (called often enough that no_show is allowed)."""
    status = TicketStatus(status)
    if status is S.WAITING:
        return TicketState()
    calls = 3 if call_count is None else call_count
    base = TicketState(
        status=status, call_count=calls, called_at=T0, last_called_at=T0, counter_id="c1"
    )
    if status in (S.SERVING, S.DONE):
        base = replace(base, started_at=T0 + timedelta(minutes=1))
    if status is S.DONE:
        base = replace(base, completed_at=T0 + timedelta(minutes=5))
    if status in TERMINAL_STATES:
        base = replace(base, ended_at=T0 + timedelta(minutes=5))
    return base


def test_tables_match_the_documented_rules():
    assert {(a.value, s.value) for a, ss in LEGAL_STATES.items() for s in ss} == set(ALLOWED)
    assert {s.value for s in TERMINAL_STATES} == {"done", "no_show", "cancelled", "transferred"}
    assert set(LEGAL_STATES) == set(Action)


@pytest.mark.parametrize("action, status", sorted(ALLOWED))
def test_allowed_transitions_reach_the_documented_status(action, status):
    now = T0 + timedelta(minutes=10)
    new = apply(state_in(status), action, now)
    assert new.status == ALLOWED[(action, status)]


@pytest.mark.parametrize("action, status", FORBIDDEN)
def test_every_other_transition_is_refused(action, status):
    state = state_in(status)
    with pytest.raises(InvalidTransition) as caught:
        apply(state, action, T0 + timedelta(minutes=10))
    assert (caught.value.action, caught.value.status) == (action, status)
    assert caught.value.reason == "not_allowed"


@pytest.mark.parametrize("status", ["done", "no_show", "cancelled", "transferred"])
def test_terminal_states_accept_no_action(status):
    for action in Action:
        with pytest.raises(InvalidTransition):
            apply(state_in(status), action, T0)


def test_full_happy_path_records_every_timestamp():
    t = [T0 + timedelta(minutes=m) for m in range(5)]
    s = apply(TicketState(), "call", t[1], counter_id="loket-3")
    assert (s.status, s.call_count, s.called_at, s.last_called_at, s.counter_id) == (
        S.CALLED,
        1,
        t[1],
        t[1],
        "loket-3",
    )
    s = apply(s, Action.RECALL, t[2])
    assert (s.call_count, s.called_at, s.last_called_at, s.counter_id) == (2, t[1], t[2], "loket-3")
    s = apply(s, "start", t[3])
    assert (s.status, s.started_at) == (S.SERVING, t[3])
    s = apply(s, "complete", t[4])
    assert (s.status, s.completed_at, s.ended_at) == (S.DONE, t[4], t[4])
    assert s.is_terminal


def test_apply_returns_a_new_state_and_leaves_the_old_one_alone():
    old = TicketState()
    new = apply(old, "call", T0)
    assert old.status is S.WAITING and old.call_count == 0
    assert new is not old


def test_call_sets_count_to_one():
    assert apply(TicketState(call_count=0), "call", T0).call_count == 1


def test_recall_from_another_counter_records_it():
    s = apply(TicketState(), "call", T0, counter_id="c1")
    assert apply(s, "recall", T0, counter_id="c2").counter_id == "c2"
    assert apply(s, "recall", T0).counter_id == "c1"


@pytest.mark.parametrize(
    "calls, threshold, allowed",
    [(1, 3, False), (2, 3, False), (3, 3, True), (4, 3, True), (1, 1, True), (1, 2, False)],
)
def test_no_show_needs_enough_calls(calls, threshold, allowed):
    state = state_in("called", call_count=calls)
    if allowed:
        new = apply(state, "no_show", T0, no_show_after_calls=threshold)
        assert new.status is S.NO_SHOW and new.ended_at == T0
    else:
        with pytest.raises(InvalidTransition) as caught:
            apply(state, "no_show", T0, no_show_after_calls=threshold)
        assert caught.value.reason == "too_few_calls"


def test_no_show_after_call_and_two_recalls():
    s = apply(TicketState(), "call", T0)
    with pytest.raises(InvalidTransition):
        apply(s, "no_show", T0)
    s = apply(apply(s, "recall", T0), "recall", T0)
    assert apply(s, "no_show", T0).status is S.NO_SHOW


@pytest.mark.parametrize("status", ["called", "serving"])
def test_transfer_ends_the_old_ticket(status):
    new = apply(state_in(status), "transfer", T0 + timedelta(minutes=9))
    assert new.status is S.TRANSFERRED and new.ended_at == T0 + timedelta(minutes=9)
    assert new.completed_at is None


def test_unknown_action_and_naive_now_are_rejected():
    with pytest.raises(ValueError):
        apply(TicketState(), "park", T0)
    with pytest.raises(ValueError, match="aware"):
        apply(TicketState(), "call", datetime(2026, 5, 11, 8))


def test_invalid_transition_is_a_value_error_with_a_readable_message():
    with pytest.raises(ValueError, match="cannot complete a waiting ticket"):
        apply(TicketState(), "complete", T0)


@given(st.lists(st.sampled_from(list(Action)), max_size=12))
def test_random_action_sequences_never_leave_a_terminal_state(actions):
    state = TicketState()
    for i, action in enumerate(actions):
        try:
            new = apply(state, action, T0 + timedelta(minutes=i))
        except InvalidTransition:
            continue
        assert state.status not in TERMINAL_STATES
        assert new.call_count >= state.call_count or action is Action.CALL
        state = new


def test_transferred_citizen_keeps_their_original_arrival_time():
    issued = T0
    assert transfer_queued_at(issued, T0 + timedelta(minutes=40)) == issued


def test_transfer_queued_at_rejects_future_issue_and_naive_times():
    with pytest.raises(ValueError):
        transfer_queued_at(T0 + timedelta(minutes=1), T0)
    with pytest.raises(ValueError):
        transfer_queued_at(datetime(2026, 5, 11, 8), T0)
