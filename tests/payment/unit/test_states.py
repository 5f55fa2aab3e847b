import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mpp_payment.domain.states import (
    InvalidAmount,
    InvalidTransition,
    Outcome,
    PaymentStatus,
    RefundExceedsPaid,
    apply_closing_notification,
    apply_paid_notification,
    refund_outcome,
    transition,
)

S = PaymentStatus
ALLOWED_PAIRS = {
    (S.PENDING, S.PAID),
    (S.PENDING, S.EXPIRED),
    (S.PENDING, S.FAILED),
    (S.PENDING, S.CANCELLED),
    (S.PAID, S.PARTIALLY_REFUNDED),
    (S.PAID, S.REFUNDED),
    (S.PARTIALLY_REFUNDED, S.PARTIALLY_REFUNDED),
    (S.PARTIALLY_REFUNDED, S.REFUNDED),
}
ALL_PAIRS = list(itertools.product(PaymentStatus, repeat=2))


def test_status_values_are_the_contract():
    assert [s.value for s in PaymentStatus] == [
        "pending",
        "paid",
        "expired",
        "failed",
        "cancelled",
        "partially_refunded",
        "refunded",
    ]
    assert PaymentStatus("paid") is S.PAID
    assert S.PAID == "paid"


@pytest.mark.parametrize(("current", "target"), sorted(ALLOWED_PAIRS))
def test_allowed_transitions(current, target):
    assert transition(current, target) is target
    assert transition(current.value, target.value) is target


@pytest.mark.parametrize(
    ("current", "target"), [pair for pair in ALL_PAIRS if pair not in ALLOWED_PAIRS]
)
def test_every_other_transition_is_refused(current, target):
    with pytest.raises(InvalidTransition) as raised:
        transition(current, target)
    assert (raised.value.current, raised.value.target) == (current.value, target.value)


@pytest.mark.parametrize("terminal", [S.EXPIRED, S.FAILED, S.CANCELLED, S.REFUNDED])
def test_terminal_statuses_have_no_way_out(terminal):
    for target in PaymentStatus:
        with pytest.raises(InvalidTransition):
            transition(terminal, target)


def test_unknown_status_name_is_a_value_error():
    with pytest.raises(ValueError):
        transition("settled", "paid")


PAID_NOTICE_EXPECTED = {
    S.PENDING: Outcome(S.PAID, None, True),
    S.PAID: Outcome(S.PAID, None, False),
    S.PARTIALLY_REFUNDED: Outcome(S.PARTIALLY_REFUNDED, None, False),
    S.REFUNDED: Outcome(S.REFUNDED, None, False),
    S.EXPIRED: Outcome(S.PAID, "paid_after_expiry", True),
    S.CANCELLED: Outcome(S.PAID, "paid_after_expiry", True),
    S.FAILED: Outcome(S.PAID, "paid_after_expiry", True),
}


@pytest.mark.parametrize(("status", "expected"), PAID_NOTICE_EXPECTED.items())
def test_paid_notice_with_matching_amount(status, expected):
    assert apply_paid_notification(status, invoice_amount=25_000, paid_amount=25_000) == expected


@pytest.mark.parametrize("status", list(PaymentStatus))
@pytest.mark.parametrize("paid_amount", [0, 24_999, 25_001, 250_000])
def test_paid_notice_with_wrong_amount_changes_nothing_and_flags(status, paid_amount):
    outcome = apply_paid_notification(status, invoice_amount=25_000, paid_amount=paid_amount)
    assert outcome == Outcome(status, "amount_mismatch", False)


def test_duplicate_paid_notice_is_idempotent():
    first = apply_paid_notification(S.PENDING, invoice_amount=10_000, paid_amount=10_000)
    second = apply_paid_notification(first.new_status, invoice_amount=10_000, paid_amount=10_000)
    assert first.changed and not second.changed
    assert second.new_status is S.PAID


@given(invoice=st.integers(1, 10**12), paid=st.integers(0, 10**12))
def test_paid_notice_never_marks_paid_on_a_different_amount(invoice, paid):
    outcome = apply_paid_notification(S.PENDING, invoice_amount=invoice, paid_amount=paid)
    assert (outcome.new_status is S.PAID) == (invoice == paid)


@pytest.mark.parametrize(
    ("invoice", "paid"), [(0, 0), (-1, -1), (10_000, -1), (10_000.0, 10_000), (True, True)]
)
def test_paid_notice_refuses_bad_amounts(invoice, paid):
    with pytest.raises(InvalidAmount):
        apply_paid_notification(S.PENDING, invoice_amount=invoice, paid_amount=paid)


CLOSING = [S.EXPIRED, S.CANCELLED, S.FAILED]


@pytest.mark.parametrize("status", list(PaymentStatus))
@pytest.mark.parametrize("closing", CLOSING)
def test_closing_notice_for_every_status(status, closing):
    outcome = apply_closing_notification(status, closing)
    if status is S.PENDING:
        assert outcome == Outcome(closing, None, True)
    elif status in (S.PAID, S.PARTIALLY_REFUNDED, S.REFUNDED):
        assert outcome == Outcome(status, "late_notice", False)
    else:
        assert outcome == Outcome(status, None, False)


@pytest.mark.parametrize("target", [S.PENDING, S.PAID, S.REFUNDED, S.PARTIALLY_REFUNDED])
def test_closing_notice_only_accepts_closing_statuses(target):
    with pytest.raises(InvalidTransition):
        apply_closing_notification(S.PENDING, target)


@pytest.mark.parametrize(
    ("paid", "so_far", "amount", "expected"),
    [
        (50_000, 0, 50_000, S.REFUNDED),
        (50_000, 0, 1, S.PARTIALLY_REFUNDED),
        (50_000, 0, 49_999, S.PARTIALLY_REFUNDED),
        (50_000, 20_000, 10_000, S.PARTIALLY_REFUNDED),
        (50_000, 20_000, 30_000, S.REFUNDED),
        (50_000, 49_999, 1, S.REFUNDED),
    ],
)
def test_refund_outcome(paid, so_far, amount, expected):
    assert refund_outcome(paid, so_far, amount) is expected


@pytest.mark.parametrize(
    ("paid", "so_far", "amount"),
    [(50_000, 0, 50_001), (50_000, 20_000, 30_001), (50_000, 50_000, 1), (50_000, 60_000, 1)],
)
def test_refund_beyond_what_is_held_is_refused(paid, so_far, amount):
    with pytest.raises(RefundExceedsPaid):
        refund_outcome(paid, so_far, amount)


@pytest.mark.parametrize(
    ("paid", "so_far", "amount"),
    [
        (50_000, 0, 0),
        (50_000, 0, -5),
        (50_000, -1, 10),
        (0, 0, 1),
        (50_000, 0, 10.5),
        (50_000.0, 0, 10),
        (50_000, 0, True),
    ],
)
def test_refund_with_invalid_amount_is_refused(paid, so_far, amount):
    with pytest.raises(InvalidAmount):
        refund_outcome(paid, so_far, amount)


@given(parts=st.lists(st.integers(1, 10**9), min_size=1, max_size=12))
def test_successive_refunds_end_refunded_exactly_at_the_paid_amount(parts):
    paid = sum(parts)
    status, refunded = S.PAID, 0
    for amount in parts:
        status = transition(status, refund_outcome(paid, refunded, amount))
        refunded += amount
        assert (status is S.REFUNDED) == (refunded == paid)
    assert status is S.REFUNDED
    with pytest.raises(RefundExceedsPaid):
        refund_outcome(paid, refunded, 1)
