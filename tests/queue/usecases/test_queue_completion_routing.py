"""The queue routes a completion by the payment service's terms (issue 20, item 3): routed as
``ticket_completed.free`` only when payment's terms for the catalogue version in force at
completion say nothing is owed; otherwise ``ticket_completed`` and payment decides per ticket."""

from __future__ import annotations

import hashlib
import json

from sqlalchemy import select

from mpp_queue import usecases
from tests.queue.usecases.conftest import OUTBOX, STAFF, setup_agency
from tests.queue.usecases.test_queue_tickets_flow import counter, take


def terms(floor, svc: dict, version: int | None, required: bool) -> None:
    """payment_terms_set, as the payment service sends it, applied by the queue."""
    payload = {
        "service_id": svc["id"],
        "agency_id": svc["agency_id"],
        "version": version,
        "payment_required": required,
    }
    floor("set_payment_terms", payload, now=False)


def complete(floor, agency: dict, svc: dict, ticket: dict | None = None) -> tuple[str | None, dict]:
    """Serve one citizen of ``svc`` (``ticket``, else a new one); the completion's routing key
    (None: its type) and payload."""
    desk = counter(floor, agency, [svc], name=str(len(floor.events("counter_opened")) + 1))
    ticket = ticket or take(floor, svc)
    assert floor("call_next", desk["id"], STAFF, settings=True)["id"] == ticket["id"]
    for action in ("start", "complete"):
        floor("ticket_action", ticket["id"], action, {}, STAFF, settings=True)
    with floor.engine.connect() as conn:
        key, body = conn.execute(
            select(OUTBOX.c.routing_key, OUTBOX.c.body)
            .where(OUTBOX.c.event_type == "ticket_completed")
            .order_by(OUTBOX.c.seq.desc())
            .limit(1)
        ).one()
    payload = json.loads(body)["payload"]
    assert payload["ticket_id"] == ticket["id"]
    return key, payload


def test_a_free_service_whose_terms_are_current_is_routed_past_payment(floor):
    agency, svc = setup_agency(floor, fee_idr=0)
    terms(floor, svc, 1, required=False)
    key, payload = complete(floor, agency, svc)
    assert key == "ticket_completed.free"
    assert payload["payment_required"] is False and payload["payment_terms_version"] == 1


def test_without_terms_or_with_a_fee_the_completion_goes_to_payment_as_before(floor):
    agency, free = setup_agency(floor, fee_idr=0)
    key, payload = complete(floor, agency, free)  # payment has said nothing yet
    assert key is None
    assert payload["payment_required"] is None and payload["payment_terms_version"] is None

    paid = floor(
        "plug_service",
        agency["id"],
        {"code": "SIM", "name": "SIM", "fee_idr": 5000, "sla_minutes": 60, "prefix": "B"},
        now=False,
    )
    terms(floor, paid, 1, required=True)
    key, payload = complete(floor, agency, paid)
    assert key is None and payload["payment_required"] is None


def test_a_fee_raised_while_payment_s_terms_lag_still_goes_to_payment(floor):
    agency, svc = setup_agency(floor, fee_idr=0)
    terms(floor, svc, 1, required=False)
    # 0 -> 5000 (version 2) while a citizen waits; payment's terms are still for version 1
    floor("update_service", agency["id"], svc["id"], {"fee_idr": 5000}, now=False)
    key, payload = complete(floor, agency, svc)
    assert key is None and payload["payment_required"] is None

    terms(floor, svc, 2, required=True)
    terms(floor, svc, 1, required=False)  # a late copy of the older terms changes nothing
    key, _ = complete(floor, agency, svc)
    assert key is None


def test_a_fee_dropped_to_zero_is_routed_free_once_payment_says_so(floor):
    agency, svc = setup_agency(floor, fee_idr=20000)
    terms(floor, svc, 1, required=True)
    floor("update_service", agency["id"], svc["id"], {"fee_idr": 0}, now=False)
    assert complete(floor, agency, svc)[0] is None  # terms for version 2 not here yet
    terms(floor, svc, 2, required=False)
    key, payload = complete(floor, agency, svc)
    assert key == "ticket_completed.free" and payload["payment_terms_version"] == 2
    terms(floor, svc, None, required=True)  # terms without a version are never kept
    assert complete(floor, agency, svc)[0] == "ticket_completed.free"


def code_of(floor, ticket: dict) -> str:
    """The access code the citizen was given with ``ticket`` (the take-ticket entry point's
    citizen view)."""
    return usecases.citizen_view(floor.settings, ticket)["access_code"]


def test_every_completion_carries_the_digest_of_the_ticket_s_access_code(floor):
    """The payment service serves the invoice to the code's holder by this digest (decision
    0022); the code itself, and the key that makes it, stay at the queue."""
    agency, paid = setup_agency(floor, fee_idr=5000)
    ticket = take(floor, paid)
    code = code_of(floor, ticket)
    assert len(code) == 22
    key, payload = complete(floor, agency, paid, ticket)
    assert key is None
    assert payload["access_digest"] == hashlib.sha256(code.encode()).hexdigest()
    assert code not in json.dumps(payload)

    free_agency, free = setup_agency(floor, "FREEAG", fee_idr=0)
    terms(floor, free, 1, required=False)
    other = take(floor, free)
    key, payload = complete(floor, free_agency, free, other)
    assert key == "ticket_completed.free"
    assert payload["access_digest"] == hashlib.sha256(code_of(floor, other).encode()).hexdigest()
