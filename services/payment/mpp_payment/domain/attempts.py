"""Charge attempts: one per provider charge of an invoice, and the rules that keep them apart.

An invoice (a payment) may be charged several times: the citizen switches from QRIS to a virtual
account, and the old QR stays payable at the provider until it lapses. Each charge is its own
attempt with its own order id, status and money, so a notice about attempt 1 is decided against
attempt 1 only: a stale "expire" of an old attempt never closes the invoice while a newer attempt
is live, and money arriving on a second attempt once the invoice is paid is an **overpayment**
(held in a suspense account until it is refunded), never a silent duplicate.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from mpp_contracts.payments import PaymentStatus

from .states import (
    FLAG_AMOUNT_MISMATCH,
    FLAG_LATE_NOTICE,
    FLAG_PAID_AFTER_EXPIRY,
    MONEY_RECEIVED,
    NO_MONEY_FINAL,
)

FLAG_OVERPAYMENT = "overpayment"
ORDER_SEPARATOR = "-"
PAYMENT_ID_LENGTH = 36  # a UUID in text

RETRY_FIRST_SECONDS = 2
RETRY_MAX_SECONDS = 300


class AttemptStatus(StrEnum):
    CREATING = "creating"  # stored, the provider charge not yet confirmed: a durable work item
    LIVE = "live"  # the provider holds a payable charge and this is the invoice's current attempt
    SUPERSEDED = "superseded"  # a newer attempt replaced it; still payable until it lapses
    PAID = "paid"  # money arrived on this attempt (the invoice's payment, or an overpayment)
    EXPIRED = "expired"
    CANCELLED = "cancelled"
    FAILED = "failed"


OPEN = frozenset({AttemptStatus.CREATING, AttemptStatus.LIVE, AttemptStatus.SUPERSEDED})
CLOSED = frozenset({AttemptStatus.EXPIRED, AttemptStatus.CANCELLED, AttemptStatus.FAILED})


def order_id(payment_id: str, attempt: int) -> str:
    """The id a provider knows attempt ``attempt`` of a payment by (providers refuse a reused
    order id, so each charge needs its own)."""
    return f"{payment_id}{ORDER_SEPARATOR}{attempt}"


def parse_order_id(order: str) -> tuple[str, int | None]:
    """``(payment_id, attempt)``; attempt None for a bare payment id (a simulator order from
    before charge attempts), which means the invoice's current attempt."""
    payment_id, rest = order[:PAYMENT_ID_LENGTH], order[PAYMENT_ID_LENGTH:]
    if not rest:
        return payment_id, None
    number = rest[len(ORDER_SEPARATOR) :]
    if not rest.startswith(ORDER_SEPARATOR) or not number.isdigit() or int(number) < 1:
        raise ValueError(f"order id {order!r} names no charge attempt")
    return payment_id, int(number)


def retry_delay(tries: int) -> int:
    """Seconds before charge try ``tries + 1``: doubling from 2 s, at most 5 min. The invoice is
    kept whatever the outage lasts; only its QR waits."""
    return min(RETRY_MAX_SECONDS, RETRY_FIRST_SECONDS * 2 ** max(tries - 1, 0))


@dataclass(frozen=True)
class PaidDecision:
    """What a verified "money received" notice on one attempt does.

    ``kind``: ``settle`` (the invoice becomes paid by this attempt), ``overpayment`` (the money
    is recorded on the attempt and held in suspense; the invoice is unchanged), ``duplicate``
    or ``mismatch`` (nothing changes)."""

    kind: str
    flag: str | None = None


def decide_paid(
    invoice_status: PaymentStatus | str,
    attempt_status: AttemptStatus | str,
    *,
    invoice_amount: int,
    paid_amount: int,
) -> PaidDecision:
    """Money arrived on an attempt.

    - amount differs from the invoice: nothing changes, ``amount_mismatch``;
    - the attempt already received it: a duplicate;
    - the invoice already has money (paid by another attempt): an **overpayment**, flagged;
    - the invoice is pending: this attempt settles it, whichever attempt it is (the money is
      the invoice's; the other attempts are then superseded, and money on them is an
      overpayment);
    - the invoice was closed: it is settled and flagged ``paid_after_expiry``.
    """
    invoice, attempt = PaymentStatus(invoice_status), AttemptStatus(attempt_status)
    if paid_amount != invoice_amount:
        return PaidDecision("mismatch", FLAG_AMOUNT_MISMATCH)
    if attempt is AttemptStatus.PAID:
        return PaidDecision("duplicate")
    if invoice in MONEY_RECEIVED:
        return PaidDecision("overpayment", FLAG_OVERPAYMENT)
    if invoice in NO_MONEY_FINAL:
        return PaidDecision("settle", FLAG_PAID_AFTER_EXPIRY)
    return PaidDecision("settle")


@dataclass(frozen=True)
class ClosingDecision:
    """``close_attempt``: store the closing status on the attempt; ``close_invoice``: the
    invoice closes too (only when the attempt is its current one and it is still pending)."""

    close_attempt: bool
    close_invoice: bool
    flag: str | None = None


def decide_closing(
    invoice_status: PaymentStatus | str, attempt_status: AttemptStatus | str, *, current: bool
) -> ClosingDecision:
    """A provider says an attempt expired, was cancelled or failed.

    A stale notice of a superseded attempt closes that attempt only; the invoice follows the
    notice only for its current attempt. A closing notice for an attempt that received money is
    flagged ``late_notice`` (check the money is really at the provider); a repeated one is silent.
    """
    invoice, attempt = PaymentStatus(invoice_status), AttemptStatus(attempt_status)
    if attempt is AttemptStatus.PAID:
        return ClosingDecision(False, False, FLAG_LATE_NOTICE)
    if attempt not in OPEN:
        return ClosingDecision(False, False)
    return ClosingDecision(True, current and invoice is PaymentStatus.PENDING)


def reconciled_status(
    attempt_status: AttemptStatus | str, *, expired: bool, money_status: str | None
) -> str | None:
    """An attempt's status in the vocabulary providers are compared in: ``money_status`` is the
    status of the money it received (the invoice's, or its overpayment's), ``expired`` whether
    its own deadline has passed. None: no charge was made yet, nothing to compare."""
    attempt = AttemptStatus(attempt_status)
    if attempt is AttemptStatus.CREATING:
        return None
    if attempt is AttemptStatus.PAID:
        return money_status or "paid"
    if attempt in CLOSED:
        return attempt.value
    return "expired" if expired else "pending"


__all__ = [
    "FLAG_AMOUNT_MISMATCH",
    "FLAG_LATE_NOTICE",
    "FLAG_OVERPAYMENT",
    "FLAG_PAID_AFTER_EXPIRY",
    "AttemptStatus",
    "ClosingDecision",
    "PaidDecision",
    "decide_closing",
    "decide_paid",
    "order_id",
    "parse_order_id",
    "reconciled_status",
    "retry_delay",
]
