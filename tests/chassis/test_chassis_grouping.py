"""The group-commit gatherer: concurrent callers (greenthreads) gathered into groups, the
leader handles each group once, and every caller gets its own outcome."""

from __future__ import annotations

import eventlet
import eventlet.event
import pytest

from mpp_chassis.grouping import ALONE, Gatherer


def run_at_once(gatherer: Gatherer, items: list, handle) -> list:
    """Submit every item from its own greenthread, all at the same instant."""

    def call(item):
        try:
            return gatherer.submit(item, handle)
        except Exception as exc:
            return exc

    pool = [eventlet.spawn(call, item) for item in items]
    return [g.wait() for g in pool]


def test_callers_arriving_together_are_handled_in_one_group():
    groups = []

    def handle(items):
        groups.append(list(items))
        eventlet.sleep(0.01)  # the group's transaction
        return [item * 10 for item in items]

    gatherer = Gatherer(window_seconds=0.05, size=16)
    assert run_at_once(gatherer, [1, 2, 3, 4, 5], handle) == [10, 20, 30, 40, 50]
    assert groups == [[1, 2, 3, 4, 5]]
    assert (gatherer.groups, gatherer.grouped) == (1, 5)


def test_a_full_group_closes_before_its_window():
    groups = []

    def handle(items):
        groups.append(list(items))
        return list(items)

    gatherer = Gatherer(window_seconds=5, size=3)  # a window nobody waits for
    with eventlet.Timeout(2):
        assert run_at_once(gatherer, list(range(6)), handle) == list(range(6))
    assert groups == [[0, 1, 2], [3, 4, 5]]


def test_callers_arriving_while_a_group_commits_go_into_the_next_one():
    """Classic group commit: the next group stays open past its window until the group in
    flight is handled, so it takes everything that arrived meanwhile."""
    groups = []
    first_in_flight = eventlet.event.Event()
    first_may_finish = eventlet.event.Event()

    def handle(items):
        groups.append(list(items))
        if len(groups) == 1:
            first_in_flight.send()
            first_may_finish.wait()  # the first group's commit, slow
        return list(items)

    gatherer = Gatherer(window_seconds=0.001, size=16)

    def call(item):
        return gatherer.submit(item, handle)

    first = eventlet.spawn(call, 0)
    first_in_flight.wait()
    later = []
    for item in range(1, 6):  # each arrives well after the window of the one before it
        later.append(eventlet.spawn(call, item))
        eventlet.sleep(0.01)
    first_may_finish.send()
    with eventlet.Timeout(2):
        assert [first.wait()] + [g.wait() for g in later] == list(range(6))
    assert groups == [[0], [1, 2, 3, 4, 5]]
    assert (gatherer.groups, gatherer.grouped) == (2, 6)


def test_an_error_outcome_is_raised_in_its_own_caller_only():
    def handle(items):
        return [ValueError(f"bad {i}") if i == 2 else i for i in items]

    outcomes = run_at_once(Gatherer(0.02, 8), [1, 2, 3], handle)
    assert outcomes[0] == 1 and outcomes[2] == 3
    assert isinstance(outcomes[1], ValueError) and str(outcomes[1]) == "bad 2"


def test_a_group_that_fails_sends_every_caller_alone():
    def handle(items):
        raise RuntimeError("the database went away")

    assert run_at_once(Gatherer(0.02, 8), [1, 2, 3], handle) == [ALONE] * 3


def test_a_handler_that_skips_a_caller_fails_the_group():
    assert run_at_once(Gatherer(0.02, 8), [1, 2], lambda items: [1]) == [ALONE, ALONE]


@pytest.mark.parametrize(("window", "size"), [(0, 16), (0.002, 1)])
def test_grouping_is_off_with_no_window_or_groups_of_one(window, size):
    assert not Gatherer(window, size).enabled
