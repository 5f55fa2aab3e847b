"""Ticket transitions grouped in one transaction (issue 20, item 2; decision 0012): the starts,
completions, no-shows and cancellations that officers press at once in one queue process.

The group reads its tickets with one statement, lets the domain decide each transition, stores
them with one guarded multi-row update and their events with one multi-row insert, and commits
once. What the group cannot settle for a caller (no such ticket, another agency's ticket, a
transition the domain refuses, a row changed meanwhile, a second request for a ticket or a key
already in the group) that caller does alone afterwards, through :func:`ticket_action`: it gets
exactly the answer or the error it gets without grouping.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam, text

from mpp_chassis.prepared import PREPARE
from mpp_contracts.errors import EXPECTED_ERRORS
from mpp_queue.adapters.tables import tickets

from .common import Settings, check_agency
from .counter_actions import breach_if_due, ending_reason, next_state, transition_event
from .tickets import OPEN_STATES, WITH_NAMES, ticket_view

GROUPED_ACTIONS = frozenset({"start", "complete", "no-show", "cancel"})
"""The ticket actions a group stores: one guarded update and one event each. A recall (its
call and announcement), a transfer (a new ticket) and a call go alone."""


@dataclass(frozen=True)
class TransitionRequest:
    """One officer's ticket action in a group: their own unit of work (the event carries their
    correlation id), the request, and the instant it arrived (the transition's time)."""

    uow: object
    ticket_id: str
    action: str
    data: dict
    actor: dict | None
    request_key: str | None
    now: datetime


def groups_transitions(uow) -> bool:
    """Grouped on PostgreSQL only (the multi-row update is PostgreSQL's ``unnest``); on SQLite,
    one writer at a time, every action goes alone."""
    return uow.session.get_bind().dialect.name == "postgresql"


_TICKETS_WITH_NAMES = WITH_NAMES.where(
    tickets.c.id.in_(bindparam("ticket_ids", expanding=True))
).execution_options(**PREPARE)  # by key: planned once per connection and number of ids


def load_tickets(session, ticket_ids) -> dict[str, dict]:
    """Tickets as :func:`load_ticket` reads them (with their service's and counter's names), by
    id, in one statement; those that do not exist are missing."""
    params = {"ticket_ids": sorted(ticket_ids)}
    return {r["id"]: dict(r) for r in session.execute(_TICKETS_WITH_NAMES, params).mappings()}


# (parameter of next_state, its array type); the t_* are the guard: the status and call count read
_COLUMNS = (
    ("t_id", "TEXT"),
    ("t_status", "TEXT"),
    ("t_call_count", "INTEGER"),
    ("status", "TEXT"),
    ("call_count", "INTEGER"),
    ("last_called_at", "TIMESTAMPTZ"),
    ("started_at", "TIMESTAMPTZ"),
    ("completed_at", "TIMESTAMPTZ"),
    ("ended_at", "TIMESTAMPTZ"),
    ("end_reason", "TEXT"),
)
# one statement whatever the group's size (one array per column), so it is parsed and cached once;
# each row keeps its own guard, so a ticket changed meanwhile is simply not returned
_TRANSITIONS_PG = (
    text(
        "UPDATE tickets SET "  # noqa: S608 - names from the constants above
        + ", ".join(f"{name} = v.{name}" for name, _ in _COLUMNS if not name.startswith("t_"))
        + " FROM unnest("
        + ", ".join(f"CAST(:{name} AS {kind}[])" for name, kind in _COLUMNS)
        + ") AS v("
        + ", ".join(name for name, _ in _COLUMNS)
        + ") WHERE tickets.id = v.t_id AND tickets.status = v.t_status"
        " AND tickets.call_count = v.t_call_count RETURNING tickets.*"
    )
    .columns(*tickets.c)
    .execution_options(**PREPARE)
)  # by key: planned once per connection


def ticket_transitions(leader, settings: Settings, requests: list[TransitionRequest]) -> list:
    """:func:`ticket_action` for a group of starts, completions, no-shows and cancellations, in
    ``leader``'s transaction, committed once.

    Returns one outcome per request, in order: its ticket's view, or ``None`` (that caller acts
    alone, as without grouping). Raises if the group could not be stored (it rolled back: every
    caller goes alone); if the commit fails, each caller with a ticket in the group gets that
    error, as it would alone.
    """
    outcomes: list = [None] * len(requests)
    done: list[tuple[int, TransitionRequest, dict]] = []
    session = leader.session
    try:
        found = load_tickets(session, {r.ticket_id for r in requests})
        planned = _plan(settings, requests, found)
        if planned:
            params = {name: [p[name] for _, p in planned] for name, _ in _COLUMNS}
            stored = {r["id"]: r for r in session.execute(_TRANSITIONS_PG, params).mappings()}
            done = [
                (i, requests[i], {**found[p["t_id"]], **stored[p["t_id"]]})
                for i, p in planned
                if p["t_id"] in stored
            ]
        events, routes = [], {}  # a completion's route: read once per service in the group
        for _, request, row in done:
            event_type, payload, route = transition_event(
                settings, request.action, row, request.data, session, routes
            )
            events.append(request.uow.sharing(leader).event_row(event_type, payload, route))
        leader.store_events(events)
        for i, request, row in done:
            if row["status"] not in OPEN_STATES:
                breach_if_due(request.uow.sharing(leader), row, request.now)
            outcomes[i] = ticket_view(session, settings, row, request.now)
    except Exception:
        leader.rollback()
        raise
    return commit_group(leader, outcomes, [i for i, _, _ in done])


def commit_group(leader, outcomes: list, stored: list[int]) -> list:
    """Commit a group's transaction and return its outcomes; if the commit fails, each caller
    whose work was in it (``stored``) gets that error, as it would alone."""
    try:
        leader.commit()
    except Exception as exc:
        leader.rollback()
        for i in stored:
            outcomes[i] = exc
    return outcomes


def _plan(settings: Settings, requests: list[TransitionRequest], found: dict) -> list:
    """``(index, guarded update's parameters)`` of each request the group can store; the others
    go alone, to meet their own error or their turn after the group's commit."""
    planned = []
    tickets_seen: set[str] = set()
    keys_seen: set[str] = set()
    for i, request in enumerate(requests):
        key = request.request_key
        if request.ticket_id in tickets_seen or key in keys_seen:
            continue  # a second action on one ticket, or a twin: alone, after the commit
        tickets_seen.add(request.ticket_id)
        if key is not None:
            keys_seen.add(key)
        row = found.get(request.ticket_id)
        if row is None:
            continue
        try:
            check_agency(request.actor, row["agency_id"])
            reason = ending_reason(request.action, request.data)
            planned.append((i, next_state(settings, row, request.action, request.now, reason)))
        except EXPECTED_ERRORS:
            continue
    return planned
