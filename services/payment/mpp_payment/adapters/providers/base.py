"""What every payment provider adapter shares: the port, its answers, and the checks of what a
provider's answer holds (amounts in rupiah, JSON objects, text).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from mpp_contracts.errors import BadRequest, ServiceUnavailable
from mpp_contracts.payments import PAYMENT_METHODS

METHODS = PAYMENT_METHODS
PROVIDERS = ("simulator", "midtrans", "xendit")


@dataclass(frozen=True)
class ChargeRequest:
    payment_id: str
    order_id: str  # the id the provider knows the order by; unique per charge attempt
    amount_idr: int
    method: str
    expires_at: datetime
    minutes: int
    description: str
    qris_fields: dict[str, str]  # merchant name/city/NMID/PAN for a locally built QRIS
    bill_number: str
    # the charge attempt's id: a retried charge with the same key is answered with the first
    # charge, so a worker killed between the provider's answer and our commit charges once
    idempotency_key: str


@dataclass(frozen=True)
class Charge:
    provider_ref: str | None = None
    qris_payload: str | None = None
    va_number: str | None = None
    ewallet_ref: str | None = None
    checkout_url: str | None = None


@dataclass(frozen=True)
class Notification:
    """A notice once verified: for Midtrans and Xendit every field but the order id comes from
    the provider's own status API, never from the notice's body."""

    order_id: str
    kind: str  # our vocabulary: pending, paid, expired, cancelled, failed, (partially_)refunded
    amount_idr: int | None
    provider_ref: str | None
    provider_status: str

    def key(self, provider: str) -> str:
        """What makes two notices the same fact: provider, order, verified status and amount.
        A replayed (or re-padded) notice has the same key, so it is stored once."""
        fact = [provider, self.order_id, self.kind, self.provider_status, self.amount_idr]
        return hashlib.sha256(json.dumps(fact, separators=(",", ":")).encode()).hexdigest()


@dataclass(frozen=True)
class RefundDone:
    provider_ref: str
    status: str  # succeeded | pending


class PaymentProvider(Protocol):
    name: str
    tracks_refunds: bool  # does ``view`` show refunds in the order's status?

    def charge(self, request: ChargeRequest) -> Charge: ...

    def refund(
        self, order_id: str, provider_ref: str | None, amount: int, key: str
    ) -> RefundDone: ...

    def read_notification(self, headers: dict[str, str], body: bytes) -> Notification: ...

    def view(self, order_id: str, provider_ref: str | None) -> tuple[str, int] | None: ...


def _json_object(body: bytes) -> dict[str, Any]:
    try:
        note = json.loads(body)
    except (ValueError, RecursionError):  # RecursionError: nested too deep (before any signature)
        raise BadRequest("MALFORMED_NOTIFICATION", "notification body is not JSON") from None
    if not isinstance(note, dict):
        raise BadRequest("MALFORMED_NOTIFICATION", "notification body is not a JSON object")
    return note


def _rupiah(text: object) -> int:
    """``50000``, ``"50000"`` or ``"50000.00"`` as integer rupiah; cents other than 00 refused."""
    if isinstance(text, bool):
        raise BadRequest("MALFORMED_NOTIFICATION", "amount is not a number")
    if isinstance(text, int):
        return text
    if isinstance(text, float) and text.is_integer():
        return int(text)
    if isinstance(text, str):
        whole, _, cents = text.partition(".")
        if whole.isdigit() and (not cents or set(cents) == {"0"}):
            return int(whole)
    raise BadRequest("MALFORMED_NOTIFICATION", f"amount {text!r} is not integer rupiah")


def _unavailable(exc: Exception) -> ServiceUnavailable:
    return ServiceUnavailable("PROVIDER_UNAVAILABLE", str(exc), {"retry_after": 30})


def _bad_answer(what: str) -> ServiceUnavailable:
    """The provider's status API answered something we cannot read: nothing is applied, and the
    provider's retry of the notice (it retries on any non-2xx) gets another chance."""
    return ServiceUnavailable("PROVIDER_BAD_ANSWER", what, {"retry_after": 30})


def _answer_rupiah(value: object, provider: str) -> int:
    try:
        return _rupiah(value)
    except BadRequest:
        raise _bad_answer(f"{provider} status answer has no integer amount") from None


def _text(value: object, name: str) -> str:
    if not isinstance(value, str) or not value:
        raise BadRequest("MALFORMED_NOTIFICATION", f"{name} is missing")
    return value


# -- simulator ----------------------------------------------------------------------------------
