"""What a counter does with the citizen it called: recall, start, complete, no-show,
cancel, transfer to another service; SLA breaches; and the facts other services send about a
ticket (its payment, its rating invitation)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import bindparam, update

from mpp_chassis.claims import ClaimedChange
from mpp_contracts.errors import Conflict, NotFound
from mpp_queue.adapters.tables import (
    counters,
    tickets,
)
from mpp_queue.domain import access, sla
from mpp_queue.domain.tickets import (
    Action,
    InvalidTransition,
    TicketState,
    TicketStatus,
    apply,
    transfer_queued_at,
)

from .common import Settings, check_agency, invalid, load_row, now_utc
from .counter_calls import call_ticket, record_call, ticket_for_press
from .issuing import active_service, issue
from .payment_terms import completion_route
from .tickets import OPEN_STATES, citizen_view, load_ticket, ticket_event, ticket_view

# -- counter actions ---------------------------------------------------------------------------

ACTIONS = {
    "recall": Action.RECALL,
    "start": Action.START,
    "complete": Action.COMPLETE,
    "no-show": Action.NO_SHOW,
    "cancel": Action.CANCEL,
    "transfer": Action.TRANSFER,
}


def _state(row) -> TicketState:
    return TicketState(
        status=TicketStatus(row["status"]),
        call_count=row["call_count"],
        called_at=row["called_at"],
        last_called_at=row["last_called_at"],
        started_at=row["started_at"],
        completed_at=row["completed_at"],
        ended_at=row["ended_at"],
        counter_id=row["counter_id"],
    )


# a transition's guarded update, built once; it returns the stored row, so the ticket is not
# read again (its service and counter names are the ones read before: a transition keeps both)
_TRANSITION = (
    update(tickets)
    .where(
        tickets.c.id == bindparam("t_id"),
        tickets.c.status == bindparam("t_status"),
        tickets.c.call_count == bindparam("t_call_count"),
    )
    .values(
        status=bindparam("status"),
        call_count=bindparam("call_count"),
        last_called_at=bindparam("last_called_at"),
        started_at=bindparam("started_at"),
        completed_at=bindparam("completed_at"),
        ended_at=bindparam("ended_at"),
        end_reason=bindparam("end_reason"),
    )
    .returning(*tickets.c)
)


def next_state(
    settings: Settings, row: dict, action: str, now: datetime, end_reason: str | None = None
) -> dict:
    """The guarded update's parameters for a domain transition of ``row`` (409 if the domain
    refuses it): guarded by the status and call count read, the new state to store.
    ``end_reason`` is stored for a no-show or a cancellation (other actions keep the row's)."""
    try:
        state = apply(
            _state(row), ACTIONS[action], now, no_show_after_calls=settings.no_show_after_calls
        )
    except InvalidTransition as exc:
        raise Conflict(
            "INVALID_TRANSITION",
            str(exc),
            {"status": row["status"], "action": action, "reason": exc.reason},
        ) from None
    return {
        "t_id": row["id"],
        "t_status": row["status"],
        "t_call_count": row["call_count"],
        "status": state.status.value,
        "call_count": state.call_count,
        "last_called_at": state.last_called_at,
        "started_at": state.started_at,
        "completed_at": state.completed_at,
        "ended_at": state.ended_at,
        "end_reason": end_reason if end_reason is not None else row.get("end_reason"),
    }


def _transition(
    uow, settings: Settings, row: dict, action: str, now: datetime, end_reason: str | None = None
) -> dict:
    """Apply a domain transition and store it (:func:`next_state`)."""
    params = next_state(settings, row, action, now, end_reason)
    stored = uow.session.execute(_TRANSITION, params).mappings().first()
    if stored is None:
        raise Conflict("CONCURRENT_UPDATE", "the ticket changed meanwhile; reload and retry")
    return {**row, **stored}


def ending_reason(action: str, data: dict) -> str | None:
    """What a no-show or a cancellation stores as its reason (other actions store none)."""
    return data.get("reason") if action in ("no-show", "cancel") else None


def transition_event(
    settings: Settings,
    action: str,
    row: dict,
    data: dict,
    session,
    routes: dict | None = None,
) -> tuple[str, dict, str | None]:
    """The event of a start, completion, no-show or cancellation stored as ``row``: its type,
    payload and routing key (None: its type), alone and in a group alike. A completion is routed
    by the payment service's terms for the service version in force, read with the ticket in
    ``session`` (the completion's transaction: :func:`completion_route`), once per service for a
    group that passes its ``routes`` memo; it carries the digest of the ticket's access code,
    with which the payment service serves the invoice to the code's holder
    (``access.code_digest``)."""
    base = ticket_event(row)
    if action == "start":
        return (
            "ticket_serving",
            {**base, "counter_id": row["counter_id"], "started_at": row["started_at"]},
            None,
        )
    if action == "complete":
        called, started, done = (row[k] for k in ("called_at", "started_at", "completed_at"))
        service_id = row["service_id"]
        if routes is None:
            route, terms = completion_route(session, service_id, row)
        else:
            if service_id not in routes:
                routes[service_id] = completion_route(session, service_id, row)
            route, terms = routes[service_id]
        return (
            "ticket_completed",
            {
                **base,
                "counter_id": row["counter_id"],
                "officer_id": row["officer_id"],
                "fee_idr": row["fee_idr"],
                "called_at": called,
                "started_at": started,
                "completed_at": done,
                "waiting_seconds": int((called - row["issued_at"]).total_seconds()),
                "serving_seconds": int((done - started).total_seconds()),
                "access_digest": access.code_digest(settings.ticket_code_key, row["id"]),
                **terms,
            },
            route,
        )
    return (
        "ticket_no_show" if action == "no-show" else "ticket_cancelled",
        {
            **base,
            "counter_id": row["counter_id"],
            "ended_at": row["ended_at"],
            "reason": data.get("reason"),
        },
        None,
    )


def ticket_action(
    uow,
    settings: Settings,
    ticket_id: str,
    action: str,
    data: dict | None,
    actor: dict | None,
    now: datetime | None = None,
    request_key: str | None = None,
) -> dict:
    """An officer's action on a ticket. A keyed recall or call that was already done answers
    the ticket as it did; the other actions are transitions a repeat cannot apply twice (409)."""
    data = data or {}
    if request_key is not None and action in ("call", "recall"):
        if done := ticket_for_press(uow.session, settings, request_key, now):
            return done
    if action == "call":
        return call_ticket(
            uow, settings, ticket_id, data.get("counter_id"), actor, now, request_key=request_key
        )
    if action not in ACTIONS:
        raise NotFound("ACTION_NOT_FOUND", f"unknown ticket action {action}")
    session = uow.session
    row = load_ticket(session, ticket_id)
    check_agency(actor, row["agency_id"])
    now = now or now_utc()
    if action == "transfer":
        return transfer_ticket(uow, settings, row, data, now)
    row = _transition(uow, settings, row, action, now, end_reason=ending_reason(action, data))
    if action == "recall":
        counter = load_row(session, counters, row["counter_id"], "COUNTER_NOT_FOUND", "counter")
        record_call(uow, "recall", row, counter, now, request_key=request_key)
    else:
        event_type, payload, route = transition_event(settings, action, row, data, session)
        uow.add_event(event_type, payload, routing_key=route)
    if row["status"] not in OPEN_STATES:
        breach_if_due(uow, row, now)
    return ticket_view(session, settings, row, now)


def transfer_ticket(uow, settings: Settings, row: dict, data: dict, now: datetime) -> dict:
    """Send a citizen on to another service (of any agency) without losing their place.

    The current ticket ends as ``transferred``; a new ticket in the target line keeps the journey
    id, and is queued at the citizen's original arrival time (``domain.tickets.
    transfer_queued_at``), so they do not wait at the back a second time. The quota is not
    charged again: the citizen is already in the building."""
    session = uow.session
    target_id = data.get("to_service_id")
    if not target_id:
        raise invalid("to_service_id", "a transfer needs the target service")
    if target_id == row["service_id"]:
        raise invalid("to_service_id", "the ticket is already in this service's line")
    target = active_service(session, target_id)
    row = _transition(uow, settings, row, "transfer", now)
    new = issue(
        uow,
        settings,
        target,
        now,
        priority=row["priority"],
        nik_hash=row["nik_hash"],
        nik_last4=row["nik_last4"],
        phone=row["phone"],
        journey_id=row["journey_id"],
        queued_at=transfer_queued_at(row["queued_at"], now),
        transferred_from=row["id"],
    )
    session.execute(
        update(tickets).where(tickets.c.id == row["id"]).values(transferred_to=new["id"])
    )
    row["transferred_to"] = new["id"]
    uow.add_event(
        "ticket_transferred",
        {
            **ticket_event(row),
            "counter_id": row["counter_id"],
            "new_ticket_id": new["id"],
            "new_number": new["number"],
            "to_agency_id": target["agency_id"],
            "to_service_id": target["id"],
            "transferred_at": now,
        },
    )
    breach_if_due(uow, row, now)
    return ticket_view(session, settings, row, now)


# -- SLA ---------------------------------------------------------------------------------------


def breach_if_due(uow, row: dict, now: datetime) -> bool:
    """Flag the ticket and emit ``sla_breached`` if it is (or ended) past its SLA; only once.

    The guarded update (``sla_breached_at IS NULL``) makes "once" hold across the ending action
    and the SLA timer, in any number of processes."""
    if row.get("sla_breached_at") is not None or row.get("sla_minutes") is None:
        return False
    end = row["ended_at"] if row["status"] not in OPEN_STATES else None
    if not sla.sla_breached(
        issued_at=row["issued_at"],
        started_at=row["started_at"],
        completed_at=end,
        sla_minutes=row["sla_minutes"],
        now=now,
    ):
        return False
    flagged = uow.session.execute(
        update(tickets)
        .where(tickets.c.id == row["id"], tickets.c.sla_breached_at.is_(None))
        .values(sla_breached_at=now)
    ).rowcount
    if not flagged:
        return False
    deadline = row["sla_deadline"] or sla.sla_deadline(row["issued_at"], row["sla_minutes"])
    uow.add_event(
        "sla_breached",
        {
            **ticket_event(row),
            "sla_minutes": row["sla_minutes"],
            "stage": "serving" if row["started_at"] is not None else "waiting",
            "breached_at": deadline,
        },
    )
    return True


# -- facts from other services -----------------------------------------------------------------


# Each fact is its handler's whole effect on a batch of events, the claims included: one
# statement on PostgreSQL (UnitOfWork.apply_claimed). ``claimed`` holds the batch's events not
# handled before; of two about one ticket, the one applying them in turn would leave wins.


def _the(which: str) -> str:
    """The ``first`` or ``last`` claimed event of a ticket (by its place in the batch)."""
    fn = "min" if which == "first" else "max"
    return (
        f"claimed.ordinal = (SELECT {fn}(other.ordinal) FROM claimed AS other "
        "WHERE other.ticket_id = claimed.ticket_id)"
    )


_PAYMENT = {
    "ticket_id": tickets.c.id.type,
    "payment_id": tickets.c.payment_id.type,
    "status": tickets.c.payment_status.type,
}
#: ``payment_requested`` shows the payment on the ticket, but never over a later status that
#: arrived first (events may come out of order)
PAYMENT_REQUESTED = ClaimedChange(
    "UPDATE tickets SET payment_id = claimed.payment_id, payment_status = claimed.status "
    "FROM claimed WHERE tickets.id = claimed.ticket_id AND tickets.payment_status IS NULL "
    f"AND {_the('first')}",
    **_PAYMENT,
)
#: a later status of the payment (``payment_succeeded``) replaces what the ticket shows
PAYMENT_CHANGED = ClaimedChange(
    "UPDATE tickets SET payment_id = claimed.payment_id, payment_status = claimed.status "
    f"FROM claimed WHERE tickets.id = claimed.ticket_id AND {_the('last')}",
    **_PAYMENT,
)
#: ``rating_invited``: the citizen's page shows the rating token
RATING_INVITED = ClaimedChange(
    "UPDATE tickets SET rating_token = claimed.token, rating_expires_at = claimed.expires_at "
    f"FROM claimed WHERE tickets.id = claimed.ticket_id AND {_the('last')}",
    ticket_id=tickets.c.id.type,
    token=tickets.c.rating_token.type,
    expires_at=tickets.c.rating_expires_at.type,
)


def withdraw_ticket(
    uow, settings: Settings, ticket_id: str, code: str | None, now: datetime | None = None
) -> dict:
    """The citizen gives up their place in line: with the ticket's access code only (anyone
    else gets the same 404 as for no ticket), and only while it waits (409 once called)."""
    row = load_ticket(uow.session, ticket_id)
    if not access.holds_code(settings.ticket_code_key, ticket_id, code):
        raise NotFound("TICKET_NOT_FOUND", "no such ticket")
    if row["status"] != TicketStatus.WAITING.value:
        raise Conflict("TICKET_NOT_WAITING", "only a waiting ticket can be given up")
    now = now or now_utc()
    reason = "cancelled by the citizen"
    row = _transition(uow, settings, row, "cancel", now, end_reason=reason)
    uow.add_event(
        "ticket_cancelled",
        {**ticket_event(row), "counter_id": None, "ended_at": row["ended_at"], "reason": reason},
    )
    breach_if_due(uow, row, now)
    return citizen_view(settings, ticket_view(uow.session, settings, row, now))
