"""Reading a ticket's invoice for whom the queue would let read the ticket, without asking the
queue (docs/decisions/0022-invoice-read-in-one-rpc.md): the holder of the ticket's access code,
by the digest its completion carried (``domain.access``), and staff of the ticket's agency."""

from __future__ import annotations

from mpp_contracts.errors import Forbidden, NotFound
from mpp_contracts.scope import require_agency_scope
from mpp_payment.domain import access
from mpp_payment.usecases import ticket_payment


def is_staff_of(actor: dict | None, agency_id: str) -> bool:
    """An officer or agency admin of ``agency_id``, or the mall admin: the queue's rule for
    staff reading a ticket."""
    try:
        require_agency_scope(actor, agency_id, access.STAFF_ROLES)
    except Forbidden:
        return False
    return True


def read_ticket_payment(
    uow, ticket_id: str, code: str | None = None, actor: dict | None = None
) -> dict:
    """``{"verified": True, "payment": view}``: the reader may see the invoice. 404
    ``TICKET_NOT_FOUND`` (the queue's answer to a stranger: nothing tells them an invoice
    exists) when the invoice holds its code's digest and neither the code nor the actor opens
    it. ``{"verified": False, "payment": view or None}`` when this service cannot tell: no
    invoice for the ticket (a free one, or not completed yet: is the reader a stranger to the
    ticket?), or an invoice opened before completions carried the digest. The caller (the
    gateway) then asks the queue, and shows ``payment`` (None: no invoice) only to whom the
    queue lets read the ticket."""
    found = ticket_payment(uow, ticket_id)
    if found is None:
        return {"verified": False, "payment": None}
    view, digest = found
    if access.holds_code(digest, code) or is_staff_of(actor, view["agency_id"]):
        return {"verified": True, "payment": view}
    if digest is None:
        return {"verified": False, "payment": view}
    raise NotFound("TICKET_NOT_FOUND", "no such ticket")
