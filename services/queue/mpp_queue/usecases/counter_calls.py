"""Calling citizens to a counter: call-next (the line's order, claimed without two counters
taking one ticket), calling one out of order, and a press replayed by its request key."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import bindparam, case, column, insert, literal, select, text, update
from sqlalchemy.sql.elements import Label

from mpp_chassis.prepared import PREPARE
from mpp_contracts.errors import Conflict, NotFound
from mpp_queue.adapters.tables import (
    calls,
    counters,
    tickets,
)
from mpp_queue.domain import announce, calling, numbering
from mpp_queue.domain.tickets import (
    Action,
    TicketState,
    TicketStatus,
    apply,
)

from .common import Settings, check_agency, invalid, load_row, now_utc
from .tickets import (
    LINE_HEADS,
    WITH_NAMES,
    line_candidates,
    load_ticket,
    ticket_event,
    ticket_view,
)

# -- calling -----------------------------------------------------------------------------------


def _open_counter(session, counter_id: str, actor: dict | None) -> dict:
    counter = load_row(session, counters, counter_id, "COUNTER_NOT_FOUND", "counter")
    check_agency(actor, counter["agency_id"])
    if not counter["is_open"]:
        raise Conflict("COUNTER_CLOSED", "this counter is closed")
    return counter


def _claim(session, ticket_id: str, counter: dict, actor: dict | None, now: datetime) -> bool:
    """Move one waiting ticket to ``called`` at this counter; False if someone was faster.

    A guarded update: of two counters claiming the same ticket, the second changes no row (on
    PostgreSQL it waits for the first transaction's outcome). Call-next on PostgreSQL claims
    through ``_CLAIM_FIRST_FREE_PG`` instead, which passes over tickets being claimed; SQLite has
    one writer at a time."""
    state = apply(TicketState(), Action.CALL, now, counter_id=counter["id"])
    # never before the ticket was issued (see _CLAIM_FIRST_FREE_PG); the press's time stored
    # as a UtcDateTime (a bare ``else_`` would bind it as a plain DateTime)
    pressed = literal(now, tickets.c.called_at.type)
    at = case((tickets.c.issued_at > pressed, tickets.c.issued_at), else_=pressed)
    return bool(
        session.execute(
            update(tickets)
            .where(tickets.c.id == ticket_id, tickets.c.status == TicketStatus.WAITING.value)
            .values(
                status=state.status.value,
                call_count=state.call_count,
                called_at=at,
                last_called_at=at,
                counter_id=counter["id"],
                officer_id=(actor or {}).get("key_id"),
            )
        ).rowcount
    )


_CALL_KEYS = (
    "id",
    "ticket_id",
    "counter_id",
    "agency_id",
    "number",
    "kind",
    "day",
    "called_at",
    "announcement",
    "request_key",
)
# built (and cache-keyed) once; a parameter per column, the form the event's CTE needs
_INSERT_CALL = insert(calls).values({k: bindparam(k, type_=calls.c[k].type) for k in _CALL_KEYS})


def record_call(
    uow,
    kind: str,
    row: dict,
    counter: dict,
    now: datetime,
    *,
    out_of_order: bool = False,
    request_key: str | None = None,
) -> None:
    """Keep the call for the display board and announce it (``ticket_called``/``_recalled``).
    A keyed press stores its key with the call (unique): its twin's insert fails and the caller
    answers the twin with the ticket this press called (:func:`ticket_for_press`). The call and
    its event are one statement on PostgreSQL (``UnitOfWork.execute_with_event``)."""
    call, event_type, payload = call_record(kind, row, counter, now, out_of_order, request_key)
    uow.execute_with_event(_INSERT_CALL, call, event_type, payload)


def call_record(
    kind: str,
    row: dict,
    counter: dict,
    now: datetime,
    out_of_order: bool = False,
    request_key: str | None = None,
) -> tuple[dict, str, dict]:
    """A call's row and its event's type and payload (alone and in a group alike)."""
    text = announce.announcement(row["number"], counter["name"])
    call = {
        "id": str(uuid.uuid4()),
        "ticket_id": row["id"],
        "counter_id": counter["id"],
        "agency_id": counter["agency_id"],
        "number": row["number"],
        "kind": kind,
        "day": row["day"],
        "called_at": now,
        "announcement": text,
        "request_key": request_key,
    }
    return (
        call,
        "ticket_called" if kind == "call" else "ticket_recalled",
        {
            **ticket_event(row),
            "counter_id": counter["id"],
            "counter_name": counter["name"],
            "call_count": row["call_count"],
            "called_at": now,
            "announcement": text,
            "spoken_announcement": announce.spoken_announcement(row["number"], counter["name"]),
            "out_of_order": out_of_order,
        },
    )


CLAIM_ROUNDS = 3  # reads of the line's heads before "nothing waiting" while others claim them
PREFERENCES = 10  # choices offered to one claim statement (PostgreSQL)


def _claimed_with_names() -> str:
    """``SELECT`` of the claimed row as :data:`WITH_NAMES` reads a ticket (its service's and
    counter's names), from the claim's ``claimed``: the claim returns the called ticket, where a
    read after it cost a statement per call (issue 20)."""
    names = []
    for c in WITH_NAMES.selected_columns:
        base = c.element if isinstance(c, Label) else c
        table = "claimed" if base.table is tickets else base.table.name
        names.append(f"{table}.{base.name} AS {c.name}")
    return (
        f"SELECT {', '.join(names)} FROM claimed"  # noqa: S608 - names from the tables
        " JOIN services ON services.id = claimed.service_id"
        " LEFT OUTER JOIN counters ON counters.id = claimed.counter_id"
    )


_CLAIMED_WITH_NAMES = _claimed_with_names()

_CLAIM_FIRST_FREE_PG = (
    text(
        """
    WITH claimed AS (
    UPDATE tickets
    SET status = :status, call_count = :call_count,
        called_at = GREATEST(:now, issued_at), last_called_at = GREATEST(:now, issued_at),
        counter_id = :counter_id, officer_id = :officer_id
    WHERE id = (
        SELECT id FROM tickets
        WHERE id = ANY(:ids) AND (status = 'waiting') IS TRUE
        ORDER BY array_position(CAST(:ids AS TEXT[]), CAST(id AS TEXT))
        LIMIT 1
        FOR UPDATE SKIP LOCKED
    ) AND (status = 'waiting') IS TRUE
    RETURNING *
    )
    """
        + _CLAIMED_WITH_NAMES
    )
    .bindparams(bindparam("now", type_=tickets.c.called_at.type))
    .columns(*(column(c.name, c.type) for c in WITH_NAMES.selected_columns))
    .execution_options(**PREPARE)  # by primary key: planned once per connection
)
# A call is never earlier than its ticket's issue (``GREATEST``): a press's time is taken when it
# arrives, and a ticket issued after that (by another process, or while a group gathers) can
# still be the one it claims; it is then called at its issue, not before. (``queued_at`` would
# not do: a transferred ticket is queued at the citizen's first arrival, issued at the transfer.)
# ``IS TRUE`` keeps the status test a filter, never an index condition, so the choices are looked
# up by primary key whatever the statistics say. "waiting" is a passing state: statistics taken
# overnight, or while a new mall's table was small, call it rare, and the planner then scanned
# every waiting ticket of the mall through ``ix_tickets_sla`` (~1 ms at 2,500 waiting, inside
# the claim other counters skip past) instead of ten index lookups.


def call_preferences(candidates, counter: dict, settings: Settings, now, limit: int) -> list:
    """The rule's choice, then what it would choose were that one gone, and so on."""
    remaining, choices = list(candidates), []
    while remaining and len(choices) < limit:
        choice = calling.choose_next(
            remaining,
            now=now,
            priority_streak=counter["priority_streak"],
            max_priority_streak=settings.max_priority_streak,
        )
        if choice is None:
            break
        choices.append(choice)
        remaining = [c for c in remaining if c.ticket_id != choice.candidate.ticket_id]
    return choices


def claim_first_free(session, choices: list, counter: dict, actor, now):
    """PostgreSQL: claim, in one statement, the first of ``choices`` that is still waiting and
    that no other counter holds right now (``FOR UPDATE SKIP LOCKED`` in the rule's order).
    Returns that choice and the called ticket as :func:`load_ticket` reads it, or None."""
    state = apply(TicketState(), Action.CALL, now, counter_id=counter["id"])
    row = (
        session.execute(
            _CLAIM_FIRST_FREE_PG,
            {
                "ids": [c.candidate.ticket_id for c in choices],
                "status": state.status.value,
                "call_count": state.call_count,
                "now": now,
                "counter_id": counter["id"],
                "officer_id": (actor or {}).get("key_id"),
            },
        )
        .mappings()
        .first()
    )
    if row is None:
        return None
    return next(c for c in choices if c.candidate.ticket_id == row["id"]), dict(row)


def _choose_and_claim(session, settings: Settings, counter: dict, actor, day, now):
    """The rule's choice among the heads of the line, claimed for this counter, and the called
    ticket where the claim returned it (PostgreSQL; SQLite: None); None if nothing is waiting.
    A head another counter holds (claimed or being claimed) is passed over at once for the
    rule's next choice; when every head read is gone, the heads are read again, further down
    the line than the ones found taken.

    On PostgreSQL the rule's first choices go to one claim statement that takes the first free
    one: with many counters pressing at once, claiming one choice per statement cost a round
    trip (and a statement) per head already taken."""
    tried: set[str] = set()
    one_statement = session.get_bind().dialect.name == "postgresql"
    for _ in range(CLAIM_ROUNDS):
        # read past the heads already found taken: with more counters pressing at once than
        # heads read, every head can be held by another counter while the line is long
        candidates = [
            c
            for c in line_candidates(
                session, list(counter["service_ids"]), day, now, heads=LINE_HEADS + len(tried)
            )
            if c.ticket_id not in tried
        ]
        while candidates:
            choices = call_preferences(
                candidates, counter, settings, now, PREFERENCES if one_statement else 1
            )
            if not choices:
                return None
            if one_statement:
                won = claim_first_free(session, choices, counter, actor, now)
            elif _claim(session, choices[0].candidate.ticket_id, counter, actor, now):
                won = choices[0], None
            else:
                won = None
            if won is not None:
                return won
            gone = {c.candidate.ticket_id for c in choices}
            tried |= gone
            candidates = [c for c in candidates if c.ticket_id not in gone]
        if not tried:
            return None  # the line is empty, not contended
    return None


_SET_STREAK = (
    update(counters)
    .where(counters.c.id == bindparam("counter_id"))
    .values(priority_streak=bindparam("streak"))
)


_CALL_BY_REQUEST_KEY = select(calls.c.ticket_id).where(
    calls.c.request_key == bindparam("request_key")
)


def ticket_for_press(
    session, settings: Settings, request_key: str, now: datetime | None = None
) -> dict | None:
    """The ticket a keyed press (call-next, call, recall) already called, if it did."""
    found = session.execute(_CALL_BY_REQUEST_KEY, {"request_key": request_key}).scalar_one_or_none()
    if found is None:
        return None
    return ticket_view(session, settings, load_ticket(session, found), now or now_utc())


def call_next(
    uow,
    settings: Settings,
    counter_id: str,
    actor: dict | None,
    now: datetime | None = None,
    request_key: str | None = None,
) -> dict:
    """Call the next eligible ticket at a counter (the rule is ``domain.calling``).

    Reads the heads of today's line of the counter's services, lets the domain choose with this
    counter's priority streak, and claims the choice with a guarded update. If another counter
    (in this process or another) claimed it first, or is claiming it right now, the update
    touches no row and the next choice is tried at once, so two counters never get the same
    ticket and none waits for another's transaction.
    """
    session = uow.session
    counter = _open_counter(session, counter_id, actor)
    now = now or now_utc()
    if request_key is not None and (done := ticket_for_press(session, settings, request_key, now)):
        return done  # the officer's retried press: the ticket it called, not the next one
    day = numbering.mall_day(now, settings.mall_timezone)
    won = _choose_and_claim(session, settings, counter, actor, day, now)
    if won is None:
        raise NotFound("NO_TICKET_WAITING", "no ticket is waiting for this counter's services")
    choice, row = won
    session.execute(_SET_STREAK, {"counter_id": counter_id, "streak": choice.priority_streak})
    row = row or load_ticket(session, choice.candidate.ticket_id)
    record_call(uow, "call", row, counter, row["called_at"], request_key=request_key)
    return ticket_view(session, settings, row, now)


def call_ticket(
    uow,
    settings: Settings,
    ticket_id: str,
    counter_id: str | None,
    actor: dict | None,
    now: datetime | None = None,
    request_key: str | None = None,
) -> dict:
    """Call one ticket out of order (e.g. the officer sees an urgent case). The counter must
    serve the ticket's service; the counter's priority streak is left alone."""
    if not counter_id:
        raise invalid("counter_id", "calling a specific ticket needs the calling counter")
    session = uow.session
    counter = _open_counter(session, counter_id, actor)
    row = load_ticket(session, ticket_id)
    check_agency(actor, row["agency_id"])  # another agency's ticket: 403, whatever the counter
    if row["service_id"] not in counter["service_ids"]:
        raise Conflict("COUNTER_DOES_NOT_SERVE", "this counter does not serve the ticket's service")
    now = now or now_utc()
    if row["status"] != TicketStatus.WAITING.value or not _claim(
        session, ticket_id, counter, actor, now
    ):
        status = session.execute(
            select(tickets.c.status).where(tickets.c.id == ticket_id)
        ).scalar_one()
        raise Conflict(
            "INVALID_TRANSITION",
            f"cannot call a {status} ticket",
            {"status": status, "action": "call", "reason": "not_allowed"},
        )
    row = load_ticket(session, ticket_id)
    record_call(
        uow, "call", row, counter, row["called_at"], out_of_order=True, request_key=request_key
    )
    return ticket_view(session, settings, row, now)
