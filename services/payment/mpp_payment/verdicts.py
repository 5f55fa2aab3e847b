"""Whether a completed ticket owes anything: this service's verdict per ticket (the fee in force
at completion), and the facts of the completion it passes on with that verdict."""

from __future__ import annotations

from sqlalchemy import bindparam, select

from mpp_chassis.claims import RidingClaim, with_claim
from mpp_payment.adapters.tables import catalogue


def completion_facts(facts) -> dict:
    """Who served the visit and when (``ticket_completed``'s, kept on the invoice): sent with
    the verdict that settles the ticket, from which alone the rating service invites
    (decision 0015). None for an invoice opened before they were kept."""
    return {name: facts.get(name) for name in ("counter_id", "officer_id", "completed_at")}


_FEE = select(catalogue.c.fee_idr).where(catalogue.c.id == bindparam("service_id"))
_FEE_SQL = "SELECT (SELECT fee_idr FROM catalogue_services WHERE id = :service_id) FROM claim"


def invoice_amount(uow, ticket: dict, claim: RidingClaim | None = None) -> int | None:
    """What a completed ticket owes (0: nothing): the fee in force when it was completed — the
    service is rendered then, and a fee changed while the citizen waited applies to them
    (docs/payment-rules.md). It is read from our copy of the catalogue (kept from ``service_*``
    events, never overwritten by an older version); the fee the ticket event carries (the fee
    the ticket was issued with) is used only when our copy has not arrived yet. With the
    event's ``claim`` (``claimed(riding=True)``), the read carries it: None when the event was
    handled before (decision 0006)."""
    params = {"service_id": ticket["service_id"]}
    if claim is None:
        fee = uow.session.execute(_FEE, params).scalar_one_or_none()
    else:
        row = uow.session.execute(with_claim(_FEE_SQL, claim.rides), {**params, **claim.params})
        if (found := row.first()) is None:
            return None
        fee = found[0]
    return ticket["fee_idr"] if fee is None else fee


def payment_not_required(uow, ticket: dict) -> None:
    """Record the verdict that a completed ticket owes nothing, as the fact the rating service
    invites from (``payment_not_required``, with the completion's facts). Nothing else is
    stored: no invoice, no ledger."""
    uow.add_event(
        "payment_not_required",
        {
            "ticket_id": ticket["ticket_id"],
            "agency_id": ticket["agency_id"],
            "service_id": ticket["service_id"],
            **completion_facts(ticket),
        },
    )
