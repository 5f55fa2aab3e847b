"""Translate providers' statuses into our event kinds.

Kept apart from HTTP clients so the one decision that matters (does this status mean money arrived?)
is a table that can be read and tested. An unknown status raises rather than defaulting: guessing
"pending" could hide a new failure status, guessing "paid" would hand out services for free.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from .errors import UnknownProviderStatus

EventKind = Literal[
    "pending", "paid", "expired", "cancelled", "failed", "refunded", "partially_refunded"
]


@dataclass(frozen=True)
class Notice:
    """A provider status reduced to our vocabulary; ``provider_status`` is kept for audit logs."""

    kind: EventKind
    provider: str
    provider_status: str


_MIDTRANS: dict[str, EventKind] = {
    "pending": "pending",
    "authorize": "pending",
    "settlement": "paid",
    "expire": "expired",
    "cancel": "cancelled",
    "deny": "failed",
    "failure": "failed",
    "refund": "refunded",
    "partial_refund": "partially_refunded",
}

_MIDTRANS_CAPTURE: dict[str | None, EventKind] = {
    "accept": "paid",
    "challenge": "pending",
    "deny": "failed",
    None: "pending",
}
"""Card ``capture`` depends on the fraud review: only ``accept`` means paid. A capture without a
fraud status waits for the ``settlement`` notice that follows it."""

_XENDIT: dict[str, EventKind] = {
    "PENDING": "pending",
    "PAID": "paid",
    "SETTLED": "paid",
    "EXPIRED": "expired",
}
"""``SETTLED`` (funds moved to our balance) follows ``PAID`` for the same invoice; both mean the
citizen paid, and the second is absorbed as a duplicate by ``apply_paid_notification``."""

_MIDTRANS_CODES: dict[str, frozenset[str]] = {
    "200": frozenset({"capture", "settlement", "authorize", "cancel", "refund", "partial_refund"}),
    "201": frozenset({"pending", "authorize", "capture"}),
    "202": frozenset({"deny", "expire", "cancel", "failure"}),
    "407": frozenset({"expire"}),
}
"""Which ``transaction_status`` words go with each Midtrans ``status_code`` (its "code statuses"
page: 200 success, 201 pending or card challenge, 202 denied/expired/cancelled, 407 expired).
The signature covers ``status_code`` but not the status word, so a word outside its code's set
is an edited notice."""


def midtrans_status(transaction_status: str, fraud_status: str | None = None) -> Notice:
    """Map Midtrans ``transaction_status`` (and ``fraud_status`` for card captures)."""
    status = transaction_status.strip().lower() if isinstance(transaction_status, str) else None
    if status == "capture":
        fraud = fraud_status.strip().lower() if isinstance(fraud_status, str) else None
        if fraud not in _MIDTRANS_CAPTURE:
            raise UnknownProviderStatus(f"midtrans capture with fraud_status {fraud_status!r}")
        return Notice(_MIDTRANS_CAPTURE[fraud], "midtrans", transaction_status)
    if status not in _MIDTRANS:
        raise UnknownProviderStatus(f"midtrans transaction_status {transaction_status!r}")
    return Notice(_MIDTRANS[status], "midtrans", transaction_status)


def midtrans_code_agrees(transaction_status: object, status_code: object) -> bool:
    """True if a notice's status word can go with its signed ``status_code`` (a ``pending``
    notice edited to ``settlement`` keeps its 201 and is caught here)."""
    if not isinstance(transaction_status, str) or not isinstance(status_code, str):
        return False
    return transaction_status.strip().lower() in _MIDTRANS_CODES.get(status_code.strip(), ())


def xendit_status(status: str) -> Notice:
    """Map a Xendit invoice status (upper case on the wire; matched case-insensitively)."""
    key = status.strip().upper() if isinstance(status, str) else None
    if key not in _XENDIT:
        raise UnknownProviderStatus(f"xendit status {status!r}")
    return Notice(_XENDIT[key], "xendit", status)
