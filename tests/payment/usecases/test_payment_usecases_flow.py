"""An invoice's life through the payment use cases on a real database (SQLite and PostgreSQL):
the fee comes from the catalogue copy, the invoice is opened and charged, the simulated
provider's signed notice settles it once, and refunds are bounded by what was paid and
idempotent per the client's key. No nameko, no broker: what the entry points call, in their
order, one transaction per call."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from mpp_contracts.errors import Conflict, Forbidden
from mpp_payment import charging, notices, refunds, usecases, verdicts
from mpp_payment.adapters.tables import journal_lines, payments
from tests.payment.usecases.conftest import ADMIN, completed_ticket, plugged


def completion_of(facts: dict) -> tuple:
    return facts["counter_id"], facts["officer_id"], facts["completed_at"]


def open_and_charge(till, ticket: dict) -> dict:
    """What handle_ticket_completed does: amount, invoice, then the charge after the commit."""
    amount = till(verdicts.invoice_amount, ticket)
    attempt = till(charging.open_invoice, till.settings, ticket, amount)
    till(charging.charge_now, till.settings, attempt)
    return till(usecases.get_ticket_payment, ticket["ticket_id"])


def pay(till, payment_id: str) -> dict:
    """The citizen pays at the simulator; its signed notice reaches the webhook's use case."""
    body, signature = till(notices.simulator_notification, till.settings, ADMIN, payment_id)
    headers = {"x-simulator-signature": signature}
    return till(notices.handle_notification, till.settings, "simulator", headers, body.decode())


def test_an_invoice_takes_the_catalogue_fee_and_is_settled_once(till):
    till(usecases.upsert_service, plugged(fee_idr=75000))
    ticket = completed_ticket(fee_idr=50000)  # the fee when the ticket was issued

    invoice = open_and_charge(till, ticket)

    assert invoice["amount_idr"] == 75000  # the fee in force at completion wins
    assert invoice["status"] == "pending"
    assert invoice["charge_status"] == "ready"
    assert invoice["qris"]["payload"].startswith("000201")  # an EMVCo QRIS
    assert [e["ticket_id"] for e in till.events("payment_requested")] == [ticket["ticket_id"]]
    # a redelivered ticket_completed opens no second invoice
    assert till(charging.open_invoice, till.settings, ticket, 75000) is None

    body, signature = till(notices.simulator_notification, till.settings, ADMIN, invoice["id"])
    headers = {"x-simulator-signature": signature}
    first = till(notices.handle_notification, till.settings, "simulator", headers, body.decode())
    again = till(notices.handle_notification, till.settings, "simulator", headers, body.decode())

    assert first["status"] == "paid"
    assert again["result"] == "duplicate"
    paid = till(usecases.get_payment, invoice["id"])
    assert paid["status"] == "paid"
    assert paid["receipt"]["amount_idr"] == 75000
    assert [e["payment_id"] for e in till.events("payment_succeeded")] == [invoice["id"]]
    # who served and when, kept since the completion: the rating service invites from this
    # verdict alone (decision 0015)
    (succeeded,) = till.delivered("payment_succeeded")
    assert completion_of(succeeded) == completion_of(ticket)
    with till.engine.connect() as conn:
        debit, credit = conn.execute(
            select(func.sum(journal_lines.c.debit_idr), func.sum(journal_lines.c.credit_idr))
        ).one()
    assert debit == credit > 0  # double entry: the journal balances


def test_a_free_service_needs_no_invoice(till):
    till(usecases.upsert_service, plugged(service_id="svc-free", fee_idr=0))
    ticket = completed_ticket(service_id="svc-free", fee_idr=10000)

    assert till(verdicts.invoice_amount, ticket) == 0
    till(verdicts.payment_not_required, ticket)

    assert [e["ticket_id"] for e in till.events("payment_not_required")] == [ticket["ticket_id"]]
    (verdict,) = till.delivered("payment_not_required")
    assert completion_of(verdict) == completion_of(ticket)
    with till.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(payments)).scalar() == 0


def test_refunds_are_bounded_by_what_was_paid_and_idempotent_per_key(till):
    till(usecases.upsert_service, plugged(fee_idr=50000))
    invoice = open_and_charge(till, completed_ticket())
    pay(till, invoice["id"])

    part = till(refunds.refund, till.settings, ADMIN, invoice["id"], {"amount_idr": 20000}, "r-1")
    replay = till(refunds.refund, till.settings, ADMIN, invoice["id"], {"amount_idr": 20000}, "r-1")

    assert part["payment_status"] == "partially_refunded"
    assert part["refunded_total_idr"] == 20000
    assert replay["id"] == part["id"]  # the same key and body: the first refund again
    with pytest.raises(Conflict) as reused:
        till(refunds.refund, till.settings, ADMIN, invoice["id"], {"amount_idr": 1000}, "r-1")
    assert reused.value.code == "IDEMPOTENCY_KEY_REUSED"
    with pytest.raises(Conflict) as too_much:
        till(refunds.refund, till.settings, ADMIN, invoice["id"], {"amount_idr": 30001}, "r-2")
    assert too_much.value.code == "REFUND_EXCEEDS_PAID"
    assert too_much.value.details["refundable_idr"] == 30000
    other_agency = {**ADMIN, "agency_id": "agency-2"}
    with pytest.raises(Forbidden):
        till(refunds.refund, till.settings, other_agency, invoice["id"], {"amount_idr": 1}, "r-3")

    rest = till(refunds.refund, till.settings, ADMIN, invoice["id"], {"amount_idr": 30000}, "r-4")

    assert rest["payment_status"] == "refunded"
    assert till(usecases.get_payment, invoice["id"])["refunded_idr"] == 50000
    assert [e["refund_amount_idr"] for e in till.events("payment_refunded")] == [20000, 30000]
