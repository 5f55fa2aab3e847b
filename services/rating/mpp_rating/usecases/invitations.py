"""Invitations from ticket and payment facts: who may rate, and the one-time token."""

from __future__ import annotations

import functools

from sqlalchemy import bindparam, update

from mpp_chassis import claims
from mpp_chassis.claims import RidingClaim
from mpp_chassis.prepared import PREPARE
from mpp_rating.adapters.tables import (
    invitations,
)
from mpp_rating.domain import invitations as rules
from mpp_rating.usecases.common import Settings, now_utc


def _state(row) -> rules.InvitationState:
    return rules.InvitationState(
        completed=row["completed"], settled=row["settled"], invited=row["token"] is not None
    )


@functools.cache
def _upsert_invitation(
    insert_columns: tuple[str, ...], update_columns: tuple[str, ...], rides: bool
):
    """``INSERT … SELECT … FROM claim … ON CONFLICT (ticket_id) DO UPDATE … RETURNING``
    (PostgreSQL and SQLite alike), after the event's claim (``claims.with_claim``: on
    PostgreSQL the claim itself, ``rides``), built once per shape. Text, as SQLAlchemy cannot
    cache a compiled ``ON CONFLICT``. (``WHERE true``: SQLite's parser needs it before an
    ``ON CONFLICT`` that follows a ``SELECT``.)"""
    columns = ("ticket_id", *insert_columns)
    statement = (
        claims.with_claim(
            f"INSERT INTO invitations ({', '.join(columns)}) "  # noqa: S608 - column names
            f"SELECT {', '.join(':' + c for c in columns)} FROM claim WHERE true "
            "ON CONFLICT (ticket_id) DO UPDATE SET "
            + ", ".join(f"{c} = excluded.{c}" for c in update_columns)
            + f" RETURNING {', '.join(c.name for c in invitations.c)}",
            rides,
        )
        .bindparams(
            *(bindparam(c, type_=invitations.c[c].type) for c in columns if c.endswith("_at"))
        )
        .columns(*invitations.c)
    )
    # ``columns`` drops the text's execution options: PostgreSQL's is prepared again here
    return statement.execution_options(**PREPARE) if rides else statement


def _record(
    uow, claim: RidingClaim | None, ticket_id: str, insert_values: dict, update_values: dict
) -> dict | None:
    """Upsert the facts known about one ticket's invitation and return the row: one statement
    (it was an update, a savepoint around an insert and a read: five round trips), and two
    facts arriving at the same instant meet in the database's conflict handling. On PostgreSQL
    the event's ``claim`` rides in it: no row when the event was handled before.
    ``update_values`` are some of ``insert_values`` (the facts this event brings)."""
    rides = claim is not None and claim.rides
    statement = _upsert_invitation(tuple(insert_values), tuple(update_values), rides)
    params = claim.params if claim is not None else {"claim_event_id": None}
    row = uow.session.execute(statement, {"ticket_id": ticket_id, **insert_values, **params})
    found = row.mappings().first()
    return None if found is None else dict(found)


#: the token, on an invitation without one yet (two facts arriving at once invite once)
_ISSUE = (
    update(invitations)
    .where(invitations.c.ticket_id == bindparam("invited"), invitations.c.token.is_(None))
    .values(
        token=bindparam("new_token"),
        expires_at=bindparam("new_expires_at", type_=invitations.c.expires_at.type),
    )
)


def _maybe_invite(uow, settings: Settings, row: dict) -> None:
    """Issue the token once the invitation is ready, with ``rating_invited`` only if this
    statement issued it: one statement on PostgreSQL (``execute_with_event(changed_only=True)``)."""
    if not rules.ready_to_invite(_state(row)):
        return
    now = now_utc()
    token = rules.new_token()
    expires = rules.token_expires_at(now, settings.token_days)
    uow.execute_with_event(
        _ISSUE,
        {"invited": row["ticket_id"], "new_token": token, "new_expires_at": expires},
        "rating_invited",
        {
            "ticket_id": row["ticket_id"],
            "agency_id": row["agency_id"],
            "service_id": row["service_id"],
            "counter_id": row["counter_id"],
            "officer_id": row["officer_id"],
            "token": token,
            "expires_at": expires,
        },
        changed_only=True,
    )


def _served(payload: dict) -> dict:
    """The completion's facts on an invitation: who served the visit and when (from
    ``ticket_completed``, or passed on with the payment service's verdict)."""
    return {
        "counter_id": payload["counter_id"],
        "officer_id": payload["officer_id"],
        "completed": True,
        "completed_at": payload["completed_at"],
    }


def on_ticket_completed(
    uow, settings: Settings, payload: dict, claim: RidingClaim | None = None
) -> None:
    """The queue's fact: the visit was served (by whom, where). Its fee is not read: whether
    the ticket needs paying is the payment service's fact (:func:`on_payment_settled`). A
    completion the queue routed as free carries that fact (``payment_required: false``, the
    payment service's terms for the version in force; it never reaches the payment service), so
    it is settled at once."""
    facts = {"agency_id": payload["agency_id"], "service_id": payload["service_id"]}
    facts.update(_served(payload))
    if payload.get("payment_required") is False:
        facts["settled"] = True
    row = _record(uow, claim, payload["ticket_id"], {"settled": False, **facts}, facts)
    if row is not None:  # None: the event was handled before
        _maybe_invite(uow, settings, row)


def on_payment_settled(
    uow, settings: Settings, payload: dict, claim: RidingClaim | None = None
) -> None:
    """The payment service's fact: nothing is owed on the ticket (``payment_succeeded``, or
    ``payment_not_required``). It carries the completion's facts (who served, when), passed on
    from ``ticket_completed``: then it is all the invitation needs, as this service no longer
    receives the completions the payment service decides (decision 0015). Without them (a
    payment service or an invoice from before) it only settles, and the completion, delivered
    then, completes the invitation in either order."""
    facts = {"settled": True}
    if payload.get("completed_at") is not None:
        facts.update(_served(payload))
    row = _record(
        uow,
        claim,
        payload["ticket_id"],
        {
            "agency_id": payload["agency_id"],
            "service_id": payload["service_id"],
            "completed": False,
            **facts,
        },
        facts,
    )
    if row is not None:  # None: the event was handled before
        _maybe_invite(uow, settings, row)
