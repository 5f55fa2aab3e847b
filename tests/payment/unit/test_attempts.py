"""Charge attempts (issue 16, item 3): each provider charge is its own record, so a notice is
decided against its own attempt; money on a second attempt is an overpayment, never a
duplicate."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from mpp_payment.domain import attempts, ledger
from mpp_payment.domain.attempts import AttemptStatus, decide_closing, decide_paid

PID = "11111111-2222-3333-4444-555555555555"


def test_order_ids_carry_the_attempt_and_read_back():
    assert attempts.order_id(PID, 2) == f"{PID}-2"
    assert attempts.parse_order_id(f"{PID}-2") == (PID, 2)
    assert attempts.parse_order_id(f"{PID}-12") == (PID, 12)
    assert attempts.parse_order_id(PID) == (PID, None)  # a simulator order from before attempts


@pytest.mark.parametrize("order", [f"{PID}-0", f"{PID}-x", f"{PID}2", f"{PID}-"])
def test_an_order_id_without_an_attempt_number_is_refused(order):
    with pytest.raises(ValueError):
        attempts.parse_order_id(order)


@pytest.mark.parametrize(
    ("invoice", "attempt", "kind", "flag"),
    [
        ("pending", "live", "settle", None),
        ("pending", "superseded", "settle", None),  # the invoice's money, whichever QR
        ("expired", "live", "settle", "paid_after_expiry"),
        ("paid", "superseded", "overpayment", "overpayment"),  # the citizen paid twice
        ("paid", "live", "overpayment", "overpayment"),
        ("partially_refunded", "expired", "overpayment", "overpayment"),
        ("refunded", "superseded", "overpayment", "overpayment"),
        ("paid", "paid", "duplicate", None),
    ],
)
def test_money_on_an_attempt(invoice, attempt, kind, flag):
    decision = decide_paid(invoice, attempt, invoice_amount=50000, paid_amount=50000)
    assert (decision.kind, decision.flag) == (kind, flag)


def test_a_wrong_amount_changes_nothing_on_any_attempt():
    for attempt in AttemptStatus:
        decision = decide_paid("paid", attempt, invoice_amount=50000, paid_amount=5000)
        assert (decision.kind, decision.flag) == ("mismatch", "amount_mismatch")


def test_a_stale_expire_of_a_superseded_attempt_never_closes_the_invoice():
    stale = decide_closing("pending", "superseded", current=False)
    assert stale.close_attempt and not stale.close_invoice and stale.flag is None
    current = decide_closing("pending", "live", current=True)
    assert current.close_attempt and current.close_invoice


def test_closing_a_paid_attempt_is_flagged_and_a_closed_one_is_silent():
    assert decide_closing("paid", "paid", current=True).flag == "late_notice"
    again = decide_closing("expired", "expired", current=True)
    assert not again.close_attempt and not again.close_invoice and again.flag is None


def test_charge_retries_back_off_to_a_ceiling():
    delays = [attempts.retry_delay(n) for n in range(1, 12)]
    assert delays[:4] == [2, 4, 8, 16]
    assert delays == sorted(delays) and max(delays) == 300


def test_reconciled_status_of_an_attempt():
    assert attempts.reconciled_status("creating", expired=False, money_status=None) is None
    assert attempts.reconciled_status("superseded", expired=False, money_status=None) == "pending"
    assert attempts.reconciled_status("superseded", expired=True, money_status=None) == "expired"
    assert attempts.reconciled_status("paid", expired=True, money_status="refunded") == "refunded"


def test_an_overpayment_and_its_refund_go_through_suspense_not_the_agency():
    at = datetime(2026, 12, 5, 3, tzinfo=UTC)
    entries = ledger.entries_for_overpayment(
        f"{PID}-1", PID, "agency-1", "simulator", 50000, at
    ) + ledger.entries_for_overpayment_refund("r1", PID, "agency-1", "simulator", 20000, at)
    balances = ledger.balances(entries)
    assert balances[ledger.overpayment_suspense("agency-1")] == -30000
    assert balances[ledger.provider_clearing("simulator")] == 30000
    assert ledger.agency_payable("agency-1") not in balances
    assert sum(balances.values()) == 0
