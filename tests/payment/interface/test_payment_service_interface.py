"""The payment service through its entry points: invoices, notifications (duplicate, forged,
out of order, wrong amount, after expiry), expiry by the timer, refunds with idempotency keys,
the journal, the settlement report and reconciliation."""

from __future__ import annotations

import base64
import csv
import io
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select, update

from mpp_contracts.errors import BadRequest, Conflict, Forbidden, Unauthorized, ValidationFailed
from mpp_payment.adapters.tables import journal_lines, payments
from mpp_payment.domain import numbers, qris
from tests.payment.interface.conftest import completed_payload, envelope

pytestmark = pytest.mark.integration

ADMIN = {"role": "agency_admin", "agency_id": "agency-1", "key_id": "k1"}


def test_invoice_opened_once_with_a_valid_qris(payment):
    ticket_id = str(uuid.uuid4())
    event = envelope("ticket_completed", completed_payload(ticket_id, "agency-1"))
    payment.call("handle_ticket_completed", [event])
    payment.call("handle_ticket_completed", [event])  # redelivered
    again = envelope("ticket_completed", completed_payload(ticket_id, "agency-1"))
    payment.call("handle_ticket_completed", [again])  # a second event for the same ticket
    with payment.db.connect() as conn:
        count = conn.execute(
            select(func.count()).where(payments.c.ticket_id == ticket_id)
        ).scalar_one()
    assert count == 1
    view = payment.call("get_ticket_payment", ticket_id)
    assert view["status"] == "pending" and view["amount_idr"] == 50000
    assert qris.parse_qris(view["qris"]["payload"]).amount_idr == 50000
    assert len(payment.events("payment_requested", view["id"])) == 1
    png = payment.call("get_qris_image", view["id"], "png")
    assert base64.b64decode(png["png_base64"]).startswith(b"\x89PNG")
    assert payment.call("get_qris_image", view["id"], "svg")["svg"].lstrip().startswith("<")


def test_free_service_opens_no_invoice_and_says_none_is_required(payment):
    """This service owns "does this ticket need paying?": a free one gets no invoice, and the
    verdict is a fact others act on (payment_not_required, once however often it comes)."""
    ticket_id = str(uuid.uuid4())
    completed = envelope("ticket_completed", completed_payload(ticket_id, "agency-1", fee=0))
    payment.call("handle_ticket_completed", [completed])
    payment.call("handle_ticket_completed", [completed])  # a redelivery
    assert payment.events("payment_requested") == []
    (verdict,) = payment.events("payment_not_required")
    assert verdict["payload"]["ticket_id"] == ticket_id
    assert verdict["payload"]["agency_id"] == "agency-1"
    with payment.db.connect() as conn:  # no invoice, no journal
        assert conn.execute(select(func.count()).select_from(payments)).scalar_one() == 0
        assert conn.execute(select(func.count()).select_from(journal_lines)).scalar_one() == 0


def test_paid_once_duplicates_change_nothing_and_journal_balances(payment):
    invoice = payment.invoice()
    first = payment.notify(invoice["id"])
    assert first["result"] == "applied" and first["status"] == "paid"
    assert payment.notify(invoice["id"])["result"] == "duplicate"
    view = payment.call("get_payment", invoice["id"])
    assert view["receipt"]["number"].startswith("MPP-") and view["receipt"]["amount_idr"] == 50000
    assert len(payment.events("payment_succeeded", invoice["id"])) == 1
    with payment.db.connect() as conn:
        debit, credit = conn.execute(
            select(func.sum(journal_lines.c.debit_idr), func.sum(journal_lines.c.credit_idr))
        ).one()
    assert debit == credit == 50000


def test_forged_and_wrong_amount_notifications(payment):
    invoice = payment.invoice()
    with pytest.raises(Unauthorized):
        payment.notify(invoice["id"], secret="not-the-secret")
    refused = payment.notify(invoice["id"], amount=5000)
    assert refused["result"] == "refused" and refused["flag"] == "amount_mismatch"
    payment.notify(invoice["id"], amount=5000)  # repeated: no second alert
    view = payment.call("get_payment", invoice["id"])
    assert view["status"] == "pending" and view["flag"] == "amount_mismatch"
    assert len(payment.events("payment_flagged", invoice["id"])) == 1
    assert payment.events("payment_succeeded", invoice["id"]) == []


def test_timer_expires_then_late_money_is_accepted_and_flagged(payment):
    invoice = payment.invoice()
    with payment.db.begin() as conn:
        conn.execute(
            update(payments)
            .where(payments.c.id == invoice["id"])
            .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
    payment.call("expire_overdue")
    assert payment.call("get_payment", invoice["id"])["status"] == "expired"
    assert len(payment.events("payment_expired", invoice["id"])) == 1
    late = payment.notify(invoice["id"])
    assert late["status"] == "paid" and late["flag"] == "paid_after_expiry"
    assert [e["payload"]["flag"] for e in payment.events("payment_flagged", invoice["id"])] == [
        "paid_after_expiry"
    ]


def test_expiry_notice_after_payment_is_out_of_order(payment):
    invoice = payment.invoice()
    payment.notify(invoice["id"])
    late = payment.notify(invoice["id"], status="expired")
    assert late["result"] == "flagged" and late["flag"] == "late_notice"
    assert payment.call("get_payment", invoice["id"])["status"] == "paid"
    assert payment.events("payment_expired", invoice["id"]) == []


def test_refunds_partial_then_full_idempotent_and_bounded(payment):
    invoice = payment.invoice()
    with pytest.raises(Conflict) as unpaid:
        payment.call("refund", ADMIN, invoice["id"], {"amount_idr": 1000}, "k-unpaid")
    assert unpaid.value.code == "INVALID_TRANSITION"
    payment.notify(invoice["id"])
    other = {"role": "agency_admin", "agency_id": "agency-2", "key_id": "k2"}
    with pytest.raises(Forbidden):
        payment.call("refund", other, invoice["id"], {"amount_idr": 1000}, "k-other")
    with pytest.raises(ValidationFailed):
        payment.call("refund", ADMIN, invoice["id"], {"amount_idr": 0}, "k0")
    first = payment.call("refund", ADMIN, invoice["id"], {"amount_idr": 20000}, "key-1")
    assert first["payment_status"] == "partially_refunded" and first["refunded_total_idr"] == 20000
    replay = payment.call("refund", ADMIN, invoice["id"], {"amount_idr": 20000}, "key-1")
    assert replay["id"] == first["id"]
    with pytest.raises(Conflict) as reused:
        payment.call("refund", ADMIN, invoice["id"], {"amount_idr": 25000}, "key-1")
    assert reused.value.code == "IDEMPOTENCY_KEY_REUSED"
    with pytest.raises(Conflict) as too_much:
        payment.call("refund", ADMIN, invoice["id"], {"amount_idr": 30001}, "key-2")
    assert too_much.value.code == "REFUND_EXCEEDS_PAID"
    last = payment.call("refund", ADMIN, invoice["id"], {"amount_idr": 30000}, "key-3")
    assert last["payment_status"] == "refunded" and last["refunded_total_idr"] == 50000
    events = payment.events("payment_refunded", invoice["id"])
    assert [e["payload"]["refund_amount_idr"] for e in events] == [20000, 30000]


def test_refund_keys_are_each_api_keys_own_and_up_to_200_characters(payment):
    """Two agencies choosing the same Idempotency-Key get a refund each (it was a 409
    IDEMPOTENCY_KEY_REUSED for the second, telling it the other had used the key), the same
    agency's two keys too; and a key as long as the gateway accepts (200) is taken (was 400)."""
    mine, theirs = payment.invoice(), payment.invoice(agency_id="agency-2")
    payment.notify(mine["id"])
    payment.notify(theirs["id"])
    other = {"role": "agency_admin", "agency_id": "agency-2", "key_id": "k2"}
    key = "refund-" + "x" * 193
    assert len(key) == 200
    first = payment.call("refund", ADMIN, mine["id"], {"amount_idr": 1000}, key)
    second = payment.call("refund", other, theirs["id"], {"amount_idr": 2000}, key)
    assert first["id"] != second["id"] and second["refunded_total_idr"] == 2000
    colleague = {**ADMIN, "key_id": "k1-colleague"}
    third = payment.call("refund", colleague, mine["id"], {"amount_idr": 1000}, key)
    assert third["id"] != first["id"] and third["refunded_total_idr"] == 2000
    again = payment.call("refund", ADMIN, mine["id"], {"amount_idr": 1000}, key)
    assert again["id"] == first["id"]  # the same key of the same API key is still one refund
    with pytest.raises(BadRequest):
        payment.call("refund", ADMIN, mine["id"], {"amount_idr": 1000}, key + "y")


def test_settlement_report_balances_and_reconciliation_finds_lost_webhook(payment):
    paid = payment.invoice()
    payment.notify(paid["id"])
    payment.call("refund", ADMIN, paid["id"], {"amount_idr": 12500}, "settle-1")
    second = payment.invoice()
    payment.notify(second["id"])
    payment.invoice(agency_id="agency-2")  # another agency: not in the report
    report = payment.call("settlement_report", ADMIN, "agency-1", None, "json")
    assert report["gross_idr"] == 100000 and report["refunds_idr"] == 12500
    assert report["net_idr"] == 87500 == sum(line["net_idr"] for line in report["lines"])
    assert report["ledger"] == {
        "account": "agency_payable:agency-1",
        "net_idr": 87500,
        "balanced": True,
    }
    rows = list(
        csv.reader(
            io.StringIO(
                payment.call("settlement_report", ADMIN, "agency-1", report["date"], "csv")["csv"]
            )
        )
    )
    assert rows[-1][0] == "TOTAL" and rows[-1][4:7] == ["100000", "12500", "87500"]
    with pytest.raises(Forbidden):
        payment.call("settlement_report", ADMIN, "agency-2", None, "json")

    assert payment.call("reconciliation", ADMIN, "agency-1", None)["mismatches"] == []
    lost = payment.invoice()
    payment.call("simulate_payment", ADMIN, lost["id"])  # money arrives, the webhook never does
    mismatches = payment.call("reconciliation", ADMIN, "agency-1", None)["mismatches"]
    assert mismatches == [
        {
            "payment_id": lost["id"],
            "order_id": f"{lost['id']}-1",  # each charge attempt is checked on its own
            "attempt": 1,
            "kind": "status_differs",
            "ours": {"status": "pending", "amount_idr": 50000},
            "provider": {"status": "paid", "amount_idr": 50000},
        }
    ]


def test_choose_method_virtual_account(payment):
    invoice = payment.invoice()
    va = payment.call("choose_method", invoice["id"], {"method": "virtual_account"})
    assert va["method"] == "virtual_account" and va["qris"] is None
    number = va["va_number"]
    assert len(number) == 16 and number.startswith("8808")
    assert numbers.luhn_check_digit(number[:-1]) == number[-1]
    assert va["expires_at"] > invoice["expires_at"]
    same = payment.call("choose_method", invoice["id"], {"method": "virtual_account"})
    assert same["va_number"] == number
    wallet = payment.call("choose_method", invoice["id"], {"method": "ewallet"})
    assert wallet["ewallet_ref"] == f"{invoice['id']}-3"  # the order id of attempt 3


def _service_event(event_type: str, fee: int, version: int | None) -> dict:
    payload = {
        "service_id": "svc-agency-1",
        "agency_id": "agency-1",
        "code": "PASPOR",
        "name": "Paspor",
        "fee_idr": fee,
        "sla_minutes": 30,
        "prefix": "P",
        "version": version,
    }
    return envelope(event_type, payload)


def test_an_older_catalogue_event_never_overwrites_a_newer_fee(payment):
    """Catalogue events arrive in any order (concurrent consumers, several relays): the copy
    keeps the newest version's fee (it took whichever came last: the stale 20,000 here)."""
    payment.call("handle_service_plugged", _service_event("service_plugged", 10000, 1))
    payment.call("handle_service_updated", _service_event("service_updated", 30000, 3))
    payment.call("handle_service_updated", _service_event("service_updated", 20000, 2))
    payment.call("handle_service_plugged", _service_event("service_plugged", 10000, 1))
    assert payment.invoice(fee=999)["amount_idr"] == 30000
    payment.call("handle_service_updated", _service_event("service_updated", 40000, 4))
    assert payment.invoice(fee=999)["amount_idr"] == 40000
    # an event from before versions never replaces a versioned copy
    payment.call("handle_service_updated", _service_event("service_updated", 5000, None))
    assert payment.invoice(fee=999)["amount_idr"] == 40000


def test_an_older_catalogue_event_arriving_first_still_creates_the_copy(payment):
    payment.call("handle_service_updated", _service_event("service_updated", 20000, 2))
    payment.call("handle_service_plugged", _service_event("service_plugged", 10000, 1))
    assert payment.invoice(fee=999)["amount_idr"] == 20000
