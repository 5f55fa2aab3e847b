"""The counted position equals the simulated one (``position_of``) for every walk-in ticket."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from mpp_queue.domain.calling import Candidate, position_from_counts, position_of

NOW = datetime(2026, 11, 28, 3, 0, tzinfo=UTC)

tickets = st.lists(
    st.tuples(
        st.sampled_from(["regular", "priority", "booked_ready", "booked_later"]),
        st.integers(min_value=0, max_value=50),
    ),
    max_size=40,
)


@settings(max_examples=400, deadline=None)
@given(tickets, st.integers(min_value=0, max_value=6), st.integers(min_value=1, max_value=5))
def test_counted_position_matches_the_simulated_calling_order(line, streak, limit):
    candidates = []
    for index, (kind, minute) in enumerate(line):
        slot = None
        if kind == "booked_ready":
            slot = NOW - timedelta(minutes=minute)
        elif kind == "booked_later":
            slot = NOW + timedelta(minutes=minute + 1)
        candidates.append(
            Candidate(
                ticket_id=f"t{index:03d}",
                service_id="s",
                queued_at=NOW - timedelta(minutes=60 - minute),
                priority="elderly" if kind == "priority" else None,
                booked_slot_start=slot,
                checked_in=slot is not None,
            )
        )
    booked_ready = sum(1 for kind, _ in line if kind == "booked_ready")

    def key(c: Candidate):
        return (c.queued_at, c.ticket_id)

    for me in candidates:
        if me.booked_slot_start is not None:
            continue
        mine = me.priority is not None
        same = [
            c
            for c in candidates
            if c.booked_slot_start is None and (c.priority is not None) == mine
        ]
        other = [
            c
            for c in candidates
            if c.booked_slot_start is None and (c.priority is not None) != mine
        ]
        counted = position_from_counts(
            priority=mine,
            booked_ready=booked_ready,
            same_class_ahead=sum(1 for c in same if key(c) < key(me)),
            other_class_waiting=len(other),
            priority_streak=streak,
            max_priority_streak=limit,
        )
        simulated = position_of(
            me.ticket_id, candidates, now=NOW, priority_streak=streak, max_priority_streak=limit
        )
        assert counted == simulated, (me.ticket_id, counted, simulated)
