"""Payment status machine and the rules for provider notifications and refunds.

Notifications arrive twice, late and out of order, and only the provider knows whether money moved.
The functions here decide, from our stored status and a notice, what the new status is, whether
anything changed (so the caller emits an event only once) and whether a human must look (``flag``).
"""

from __future__ import annotations

from dataclasses import dataclass

from mpp_contracts.payments import PaymentStatus

from .errors import InvalidAmount, InvalidTransition, RefundExceedsPaid

ALLOWED: dict[PaymentStatus, frozenset[PaymentStatus]] = {
    PaymentStatus.PENDING: frozenset(
        {PaymentStatus.PAID, PaymentStatus.EXPIRED, PaymentStatus.FAILED, PaymentStatus.CANCELLED}
    ),
    PaymentStatus.PAID: frozenset({PaymentStatus.PARTIALLY_REFUNDED, PaymentStatus.REFUNDED}),
    PaymentStatus.PARTIALLY_REFUNDED: frozenset(
        {PaymentStatus.PARTIALLY_REFUNDED, PaymentStatus.REFUNDED}
    ),
    PaymentStatus.EXPIRED: frozenset(),
    PaymentStatus.FAILED: frozenset(),
    PaymentStatus.CANCELLED: frozenset(),
    PaymentStatus.REFUNDED: frozenset(),
}
"""Moves our own commands may make. Money arriving after expiry bypasses this table on purpose:
see ``apply_paid_notification``."""

NO_MONEY_FINAL = frozenset({PaymentStatus.EXPIRED, PaymentStatus.FAILED, PaymentStatus.CANCELLED})
MONEY_RECEIVED = frozenset(
    {PaymentStatus.PAID, PaymentStatus.PARTIALLY_REFUNDED, PaymentStatus.REFUNDED}
)

FLAG_AMOUNT_MISMATCH = "amount_mismatch"
FLAG_PAID_AFTER_EXPIRY = "paid_after_expiry"
FLAG_LATE_NOTICE = "late_notice"


def transition(current: PaymentStatus | str, target: PaymentStatus | str) -> PaymentStatus:
    """Return ``target`` if the move is allowed, else raise ``InvalidTransition``.

    ``partially_refunded -> partially_refunded`` is allowed: a second partial refund is a real
    change of the refunded total even though the status name stays.
    """
    current_status, target_status = PaymentStatus(current), PaymentStatus(target)
    if target_status not in ALLOWED[current_status]:
        raise InvalidTransition(current_status.value, target_status.value)
    return target_status


@dataclass(frozen=True)
class Outcome:
    """Result of applying a notice: store ``new_status``; emit an event only if ``changed``;
    raise an alert / reconciliation task when ``flag`` is set."""

    new_status: PaymentStatus
    flag: str | None
    changed: bool


def _check_rupiah(value: int, name: str, *, allow_zero: bool = False) -> None:
    if not isinstance(value, int) or isinstance(value, bool):
        raise InvalidAmount(f"{name} must be an integer of rupiah, got {value!r}")
    if value < 0 or (value == 0 and not allow_zero):
        raise InvalidAmount(f"{name} must be {'>= 0' if allow_zero else '> 0'}, got {value}")


def apply_paid_notification(
    status: PaymentStatus | str, *, invoice_amount: int, paid_amount: int
) -> Outcome:
    """Apply a provider's "money received" notice to a payment in ``status``.

    - amount differs from the invoice: nothing changes, flagged ``amount_mismatch`` (never trust an
      amount from a webhook; a person decides whether to refund or top up). This wins over every
      other rule, so a wrong amount never marks anything paid.
    - pending: paid.
    - already paid / partially refunded / refunded: a duplicate, nothing changes, no flag.
    - expired / cancelled / failed: the citizen's money did arrive, so the payment becomes ``paid``
      with flag ``paid_after_expiry``. Dropping it would keep the money without a record; the flag
      sends it to reconciliation, which either serves the citizen or refunds.
    """
    current = PaymentStatus(status)
    _check_rupiah(invoice_amount, "invoice_amount")
    _check_rupiah(paid_amount, "paid_amount", allow_zero=True)
    if paid_amount != invoice_amount:
        return Outcome(current, FLAG_AMOUNT_MISMATCH, changed=False)
    if current in MONEY_RECEIVED:
        return Outcome(current, None, changed=False)
    if current in NO_MONEY_FINAL:
        return Outcome(PaymentStatus.PAID, FLAG_PAID_AFTER_EXPIRY, changed=True)
    return Outcome(transition(current, PaymentStatus.PAID), None, changed=True)


def apply_closing_notification(status: PaymentStatus | str, target: PaymentStatus | str) -> Outcome:
    """Apply a provider's expired / cancelled / failed notice.

    Only a pending payment closes. Any other status means the notice is a duplicate or arrived after
    a newer fact (an ``expire`` landing after ``settlement``): the stored status stands. A closing
    notice for money already received is flagged ``late_notice`` so reconciliation checks the
    provider really holds the money; a duplicate of the same closing status is silent.
    """
    current, closing = PaymentStatus(status), PaymentStatus(target)
    if closing not in NO_MONEY_FINAL:
        raise InvalidTransition(current.value, closing.value)
    if current is PaymentStatus.PENDING:
        return Outcome(transition(current, closing), None, changed=True)
    flag = FLAG_LATE_NOTICE if current in MONEY_RECEIVED else None
    return Outcome(current, flag, changed=False)


def refund_outcome(paid_amount: int, refunded_so_far: int, amount: int) -> PaymentStatus:
    """Status after refunding ``amount`` more; raises before any money is asked back.

    A refund is bounded by what is still held (paid minus refunded); the full balance makes the
    payment ``refunded``, anything less ``partially_refunded``. Callers still run ``transition``
    from the stored status, so a refund on a pending or expired payment is refused there.
    """
    _check_rupiah(paid_amount, "paid_amount")
    _check_rupiah(refunded_so_far, "refunded_so_far", allow_zero=True)
    _check_rupiah(amount, "amount")
    if refunded_so_far > paid_amount:
        raise RefundExceedsPaid(f"already refunded {refunded_so_far} of {paid_amount}")
    remaining = paid_amount - refunded_so_far
    if amount > remaining:
        raise RefundExceedsPaid(f"refund {amount} exceeds the {remaining} still refundable")
    if amount == remaining:
        return PaymentStatus.REFUNDED
    return PaymentStatus.PARTIALLY_REFUNDED
