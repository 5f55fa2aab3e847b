"""Call-next grouped in one transaction (issue 20, item 2; decision 0012): the presses of
several counters that reach one queue process at once.

The group reads its counters with one statement and each distinct line's heads once; then, in
arrival order, each counter's choice by the calling rule among the heads not yet called by the
group, claimed with its own ``FOR UPDATE SKIP LOCKED`` statement as alone (so two counters, in
this process or another, never get one ticket); then the counters' priority streaks with one
multi-row update (each claim returned its called ticket), their calls with one multi-row insert
and their ``ticket_called`` events with another, and one commit. A press the group cannot settle (no
such counter, closed, another agency's, a replayed or twin key, a second press of one counter,
no free head) is done alone afterwards through :func:`call_next`: it gets exactly today's answer.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam, insert, select, text

from mpp_chassis.prepared import PREPARE
from mpp_contracts.errors import EXPECTED_ERRORS
from mpp_queue.adapters.tables import calls, counters
from mpp_queue.domain import numbering

from .common import Settings, check_agency
from .counter_calls import PREFERENCES, call_preferences, call_record, claim_first_free
from .tickets import LINE_HEADS, line_candidates, ticket_view
from .transition_groups import commit_group


@dataclass(frozen=True)
class CallRequest:
    """One counter's call-next in a group: the officer's unit of work (the event carries their
    correlation id), the press, and the instant it arrived: the call's time, or the called
    ticket's issue where that came later (a call is never before its ticket exists)."""

    uow: object
    counter_id: str
    actor: dict | None
    request_key: str | None
    now: datetime


# by key, each planned once per connection (mpp_chassis.prepared)
_COUNTERS = (
    select(counters)
    .where(counters.c.id.in_(bindparam("counter_ids", expanding=True)))
    .execution_options(**PREPARE)
)
_PRESSED = (
    select(calls.c.request_key)
    .where(calls.c.request_key.in_(bindparam("request_keys", expanding=True)))
    .execution_options(**PREPARE)
)
_SET_STREAKS_PG = text(
    "UPDATE counters SET priority_streak = v.streak"
    " FROM unnest(CAST(:counter_ids AS TEXT[]), CAST(:streaks AS INTEGER[])) AS v(id, streak)"
    " WHERE counters.id = v.id"
).execution_options(**PREPARE)
_INSERT_CALLS = insert(calls)


def call_nexts(leader, settings: Settings, requests: list[CallRequest]) -> list:
    """:func:`call_next` for a group of presses, in ``leader``'s transaction, committed once.

    Returns one outcome per request, in order: the called ticket's view, or ``None`` (that press
    is done alone, as without grouping). Raises if the group could not be stored (it rolled
    back, its claims with it: every press goes alone)."""
    outcomes: list = [None] * len(requests)
    session = leader.session
    claimed: list[tuple[int, CallRequest, dict, object, dict]] = []
    try:
        members = _members(session, requests)
        taken: set[str] = set()
        heads: dict = {}
        for i, request, counter in members:
            day = numbering.mall_day(request.now, settings.mall_timezone)
            line = (tuple(counter["service_ids"]), day)
            if line not in heads:
                size = LINE_HEADS + len(members)
                heads[line] = line_candidates(session, list(line[0]), day, request.now, size)
            free = [c for c in heads[line] if c.ticket_id not in taken]
            choices = call_preferences(free, counter, settings, request.now, PREFERENCES)
            won = choices and claim_first_free(
                session, choices, counter, request.actor, request.now
            )
            # the choices up to the one won were held elsewhere, and that one is called here
            tried = choices[: choices.index(won[0]) + 1] if won else choices
            taken |= {c.candidate.ticket_id for c in tried}
            if won:
                claimed.append((i, request, counter, *won))
        if claimed:
            session.execute(
                _SET_STREAKS_PG,
                {
                    "counter_ids": [counter["id"] for _, _, counter, _, _ in claimed],
                    "streaks": [won.priority_streak for *_, won, _ in claimed],
                },
            )
            # each claim returned its called ticket: no read of them again
            records = [
                (
                    i,
                    request,
                    row,
                    call_record(
                        "call", row, counter, row["called_at"], request_key=request.request_key
                    ),
                )
                for i, request, counter, _, row in claimed
            ]
            session.execute(_INSERT_CALLS, [call for *_, (call, _, _) in records])
            leader.store_events(
                [
                    request.uow.sharing(leader).event_row(event_type, payload)
                    for _, request, _, (_, event_type, payload) in records
                ]
            )
            for i, request, row, _ in records:
                outcomes[i] = ticket_view(session, settings, row, request.now)
    except Exception:
        leader.rollback()
        raise
    return commit_group(leader, outcomes, [i for i, *_ in claimed])


def _members(session, requests: list[CallRequest]) -> list:
    """``(index, request, counter)`` of each press the group can call for; the others go alone,
    to meet their own error, their replay or their turn after the group's commit."""
    found = {
        row["id"]: dict(row)
        for row in session.execute(
            _COUNTERS, {"counter_ids": sorted({r.counter_id for r in requests})}
        ).mappings()
    }
    keys = sorted({r.request_key for r in requests if r.request_key is not None})
    pressed = set(session.execute(_PRESSED, {"request_keys": keys}).scalars()) if keys else set()
    members = []
    counters_seen: set[str] = set()
    keys_seen: set[str] = set()
    for i, request in enumerate(requests):
        key = request.request_key
        if request.counter_id in counters_seen or key in keys_seen or key in pressed:
            continue  # a counter's second press, a twin, a replay: alone, after the commit
        counters_seen.add(request.counter_id)
        if key is not None:
            keys_seen.add(key)
        counter = found.get(request.counter_id)
        if counter is None or not counter["is_open"]:
            continue
        try:
            check_agency(request.actor, counter["agency_id"])
        except EXPECTED_ERRORS:
            continue
        members.append((i, request, counter))
    return members
