"""Payment providers behind one port: ``simulator`` (offline), ``midtrans``-style, ``xendit``-style.

Every adapter answers the same four questions: open a charge for an invoice, refund part of it,
read (and authenticate) a notification, and tell its own view of an order for reconciliation.
Status vocabularies and signature schemes are the pure rules of ``mpp_payment.domain``; what is
here is wire formats. Outgoing calls go through :class:`~mpp_payment.adapters.http.ProviderHttp`.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol
from urllib.parse import quote

from sqlalchemy import insert, select, update

from mpp_contracts.errors import BadRequest, Conflict, ServiceUnavailable, Unauthorized
from mpp_contracts.payments import PAYMENT_METHODS
from mpp_payment.adapters.http import ProviderHttp, ProviderUnavailable
from mpp_payment.adapters.tables import simulator_book
from mpp_payment.domain import numbers, providers, qris, signatures
from mpp_payment.domain.errors import InvalidQris, UnknownProviderStatus

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


class SimulatorProvider:
    """The offline provider: builds the QRIS/VA/e-wallet data itself, keeps its own book of orders
    (so reconciliation compares two independent records) and signs notifications with HMAC."""

    name = "simulator"
    tracks_refunds = True

    def __init__(self, session, secret: str, *, va_prefix: str = "8808", now=None) -> None:
        self._session = session
        self._secret = secret
        self._va_prefix = va_prefix
        self._now = now

    def charge(self, request: ChargeRequest) -> Charge:
        """Open the order of one charge attempt in the simulator's book. Like a real provider's,
        the charge honours its idempotency key: a retry answers the same charge and leaves the
        book as it is (a paid order stays paid)."""
        ref = "SIM-" + hashlib.sha256(request.order_id.encode()).hexdigest()[:12].upper()
        if request.method == "qris":
            charge = Charge(
                provider_ref=ref,
                qris_payload=qris.build_dynamic_qris(
                    amount_idr=request.amount_idr,
                    bill_number=request.bill_number,
                    **request.qris_fields,
                ),
            )
        elif request.method == "virtual_account":
            charge = Charge(
                provider_ref=ref,
                va_number=numbers.virtual_account_number(self._va_prefix, request.order_id),
            )
        else:
            charge = Charge(provider_ref=ref, ewallet_ref=request.order_id)
        known = self._session.execute(
            select(simulator_book.c.order_id).where(
                (simulator_book.c.idempotency_key == request.idempotency_key)
                | (simulator_book.c.order_id == request.order_id)
            )
        ).first()
        if known is None:
            self._session.execute(
                insert(simulator_book).values(
                    order_id=request.order_id,
                    idempotency_key=request.idempotency_key,
                    status="pending",
                    amount_idr=request.amount_idr,
                    refunded_idr=0,
                    expires_at=request.expires_at,
                    updated_at=request.expires_at,
                )
            )
        return charge

    def record_paid(self, order_id: str, at: datetime) -> int:
        """The citizen paid at the simulated provider: its book says paid, whatever we think."""
        row = self._row(order_id)
        if row is None:
            raise BadRequest("UNKNOWN_ORDER", "the simulator has no such order")
        if row["status"] == "pending":
            self._session.execute(
                update(simulator_book)
                .where(simulator_book.c.order_id == order_id)
                .values(status="paid", updated_at=at)
            )
        return row["amount_idr"]

    def notification(self, order_id: str, status: str, amount: int, ref: str) -> tuple[bytes, str]:
        body = json.dumps(
            {"payment_id": order_id, "status": status, "amount_idr": amount, "provider_ref": ref}
        ).encode()
        return body, signatures.simulator_signature(body, self._secret)

    def refund(self, order_id: str, provider_ref: str | None, amount: int, key: str) -> RefundDone:
        row = self._row(order_id)
        if row is None or row["status"] not in ("paid", "partially_refunded"):
            raise Conflict("PROVIDER_REFUSED", "the simulator holds no money for this order")
        if row["refunded_idr"] + amount > row["amount_idr"]:
            raise Conflict("PROVIDER_REFUSED", "the simulator refuses to refund more than paid")
        total = row["refunded_idr"] + amount
        self._session.execute(
            update(simulator_book)
            .where(simulator_book.c.order_id == order_id)
            .values(
                refunded_idr=total,
                status="refunded" if total == row["amount_idr"] else "partially_refunded",
            )
        )
        digest = hashlib.sha256(key.encode()).hexdigest()[:12].upper()
        return RefundDone(provider_ref=f"SIMR-{digest}", status="succeeded")

    def read_notification(self, headers: dict[str, str], body: bytes) -> Notification:
        if not signatures.verify_simulator(
            body, headers.get("x-simulator-signature"), self._secret
        ):
            raise Unauthorized("BAD_SIGNATURE", "notification signature does not verify")
        note = _json_object(body)
        status = note.get("status")
        if status not in ("pending", "paid", "expired", "cancelled", "failed"):
            raise BadRequest("MALFORMED_NOTIFICATION", f"unsupported status {status!r}")
        if not isinstance(note.get("payment_id"), str):
            raise BadRequest("MALFORMED_NOTIFICATION", "payment_id is missing")
        return Notification(
            order_id=note["payment_id"],
            kind=status,
            amount_idr=_rupiah(note.get("amount_idr")),
            provider_ref=note.get("provider_ref"),
            provider_status=status,
        )

    def view(self, order_id: str, provider_ref: str | None) -> tuple[str, int] | None:
        row = self._row(order_id)
        if row is None:
            return None
        status = row["status"]
        if status == "pending" and self._now is not None and row["expires_at"] <= self._now:
            status = "expired"
        return status, row["amount_idr"]

    def _row(self, order_id: str):
        return (
            self._session.execute(
                select(simulator_book).where(simulator_book.c.order_id == order_id)
            )
            .mappings()
            .first()
        )


# -- midtrans -----------------------------------------------------------------------------------


class MidtransProvider:
    """Midtrans Core API: ``/v2/charge``, ``/v2/{order_id}/refund``, ``/v2/{order_id}/status``;
    notifications signed with SHA-512(order_id + status_code + gross_amount + server_key)."""

    name = "midtrans"
    tracks_refunds = True

    def __init__(self, http: ProviderHttp, server_key: str, *, bank: str = "bca") -> None:
        self._http = http
        self._server_key = server_key
        self._bank = bank

    def charge(self, request: ChargeRequest) -> Charge:
        body: dict[str, Any] = {
            "transaction_details": {
                "order_id": request.order_id,
                "gross_amount": request.amount_idr,
            },
            "custom_expiry": {"expiry_duration": request.minutes, "unit": "minute"},
        }
        if request.method == "qris":
            body.update(payment_type="qris", qris={"acquirer": "gopay"})
        elif request.method == "virtual_account":
            body.update(payment_type="bank_transfer", bank_transfer={"bank": self._bank})
        else:
            body.update(payment_type="gopay", gopay={"enable_callback": False})
        try:
            # Midtrans answers a repeated Idempotency-Key with the first charge (and refuses a
            # reused order id): a retried charge cannot charge twice
            answer = self._http.request(
                "POST",
                "/v2/charge",
                body,
                headers={"Idempotency-Key": request.idempotency_key},
                idempotent=True,
            )
        except ProviderUnavailable as exc:
            raise _unavailable(exc) from None
        data = answer.body
        if str(data.get("status_code")) not in ("200", "201"):
            raise ServiceUnavailable(
                "PROVIDER_REFUSED",
                f"midtrans refused the charge: {data.get('status_message')}",
                {"retry_after": 30},
            )
        charge = Charge(provider_ref=data.get("transaction_id"))
        if request.method == "qris":
            payload = data.get("qr_string", "")
            try:
                parsed = qris.parse_qris(payload)
            except InvalidQris as exc:
                raise ServiceUnavailable("PROVIDER_BAD_QRIS", str(exc)) from None
            if parsed.amount_idr != request.amount_idr:
                raise ServiceUnavailable("PROVIDER_BAD_QRIS", "QRIS amount differs from invoice")
            return Charge(provider_ref=charge.provider_ref, qris_payload=payload)
        if request.method == "virtual_account":
            va = (data.get("va_numbers") or [{}])[0].get("va_number")
            return Charge(provider_ref=charge.provider_ref, va_number=va)
        deeplink = next(
            (a.get("url") for a in data.get("actions", []) if a.get("name") == "deeplink-redirect"),
            None,
        )
        return Charge(
            provider_ref=charge.provider_ref, ewallet_ref=request.order_id, checkout_url=deeplink
        )

    def refund(self, order_id: str, provider_ref: str | None, amount: int, key: str) -> RefundDone:
        try:
            answer = self._http.request(
                "POST",
                f"/v2/{order_id}/refund",
                {"refund_key": key, "amount": amount, "reason": "refund by agency"},
                idempotent=True,  # refund_key makes a repeat a no-op at Midtrans
            )
        except ProviderUnavailable as exc:
            raise _unavailable(exc) from None
        data = answer.body
        if str(data.get("status_code")) != "200":
            raise Conflict(
                "PROVIDER_REFUSED", f"midtrans refused the refund: {data.get('status_message')}"
            )
        return RefundDone(
            provider_ref=str(data.get("refund_chargeback_id", key)), status="succeeded"
        )

    def read_notification(self, headers: dict[str, str], body: bytes) -> Notification:
        """Midtrans' advice, in order: check ``signature_key``; then ask the get-status API and
        take the transaction's state from its answer only. The signature covers
        ``order_id + status_code + gross_amount``, not the status word, so a word that does not
        go with its signed code is an edited notice and is refused before any call."""
        note = _json_object(body)
        if not signatures.verify_midtrans(note, self._server_key):
            raise Unauthorized("BAD_SIGNATURE", "notification signature does not verify")
        word = note.get("transaction_status")
        try:
            providers.midtrans_status(word, note.get("fraud_status"))
        except UnknownProviderStatus as exc:
            raise BadRequest("UNKNOWN_PROVIDER_STATUS", str(exc)) from None
        if not providers.midtrans_code_agrees(word, note["status_code"]):
            raise BadRequest(
                "INCONSISTENT_NOTIFICATION",
                f"transaction_status {word!r} does not go with status_code {note['status_code']}",
            )
        order = note["order_id"]
        data = self._status(order)
        if data is None:
            raise BadRequest("UNKNOWN_ORDER", "midtrans knows no such transaction")
        if data.get("order_id") not in (None, order):
            raise _bad_answer("midtrans answered about another order")
        try:
            notice = providers.midtrans_status(
                data.get("transaction_status"), data.get("fraud_status")
            )
        except UnknownProviderStatus as exc:
            raise BadRequest("UNKNOWN_PROVIDER_STATUS", str(exc)) from None
        return Notification(
            order_id=order,
            kind=notice.kind,
            amount_idr=_answer_rupiah(data.get("gross_amount"), "midtrans"),
            provider_ref=data.get("transaction_id"),
            provider_status=str(data.get("transaction_status")),
        )

    def _status(self, order_id: str) -> dict | None:
        """``GET /v2/{order_id}/status``: the transaction as Midtrans sees it (None: unknown)."""
        try:
            answer = self._http.request("GET", f"/v2/{quote(order_id, safe='')}/status")
        except ProviderUnavailable as exc:
            raise _unavailable(exc) from None
        data = answer.body
        if answer.status == 404 or str(data.get("status_code")) == "404":
            return None
        if answer.status >= 300:
            raise _bad_answer(f"midtrans get-status answered HTTP {answer.status}")
        return data

    def view(self, order_id: str, provider_ref: str | None) -> tuple[str, int] | None:
        data = self._status(order_id)
        if data is None:
            return None
        notice = providers.midtrans_status(data.get("transaction_status"), data.get("fraud_status"))
        return notice.kind, _answer_rupiah(data.get("gross_amount"), "midtrans")


# -- xendit -------------------------------------------------------------------------------------


class XenditProvider:
    """Xendit Invoice API: ``/v2/invoices`` (PENDING/PAID/SETTLED/EXPIRED), ``/refunds`` with an
    ``Idempotency-key`` header; callbacks authenticated by the ``x-callback-token`` header."""

    name = "xendit"
    tracks_refunds = False  # an invoice stays PAID after a refund

    _METHODS = {"qris": ["QRIS"], "virtual_account": ["BCA"], "ewallet": ["OVO", "DANA"]}

    def __init__(self, http: ProviderHttp, callback_token: str) -> None:
        self._http = http
        self._token = callback_token

    def charge(self, request: ChargeRequest) -> Charge:
        body = {
            "external_id": request.order_id,
            "amount": request.amount_idr,
            "currency": "IDR",
            "description": request.description,
            "invoice_duration": request.minutes * 60,
            "payment_methods": self._METHODS[request.method],
        }
        try:
            answer = self._http.request(
                "POST",
                "/v2/invoices",
                body,
                headers={"Idempotency-key": request.idempotency_key},
                idempotent=True,
            )
        except ProviderUnavailable as exc:
            raise _unavailable(exc) from None
        data = answer.body
        if answer.status >= 300 or _rupiah(data.get("amount")) != request.amount_idr:
            raise ServiceUnavailable(
                "PROVIDER_REFUSED", f"xendit refused the invoice: {data.get('error_code')}"
            )
        return Charge(
            provider_ref=data["id"],
            checkout_url=data.get("invoice_url"),
            ewallet_ref=request.order_id if request.method == "ewallet" else None,
        )

    def refund(self, order_id: str, provider_ref: str | None, amount: int, key: str) -> RefundDone:
        try:
            answer = self._http.request(
                "POST",
                "/refunds",
                {
                    "invoice_id": provider_ref,
                    "reference_id": key,
                    "amount": amount,
                    "reason": "REQUESTED_BY_CUSTOMER",
                },
                headers={"Idempotency-key": key},
                idempotent=True,
            )
        except ProviderUnavailable as exc:
            raise _unavailable(exc) from None
        data = answer.body
        if answer.status >= 300 or data.get("status") not in ("SUCCEEDED", "PENDING"):
            raise Conflict(
                "PROVIDER_REFUSED", f"xendit refused the refund: {data.get('error_code')}"
            )
        return RefundDone(provider_ref=data["id"], status=data["status"].lower())

    def read_notification(self, headers: dict[str, str], body: bytes) -> Notification:
        """Xendit's advice, in order: check the ``x-callback-token`` header; then get the invoice
        from the API and take its status and amounts from that answer only (the callback body is
        not signed; only its ids are used, to ask)."""
        if not signatures.verify_xendit_token(headers.get("x-callback-token"), self._token):
            raise Unauthorized("BAD_SIGNATURE", "callback token does not verify")
        note = _json_object(body)
        invoice_id = _text(note.get("id"), "id")
        external_id = _text(note.get("external_id"), "external_id")
        data = self._invoice(invoice_id)
        if data is None:
            raise BadRequest("UNKNOWN_ORDER", "xendit knows no such invoice")
        if data.get("external_id") != external_id:
            raise BadRequest(
                "INCONSISTENT_NOTIFICATION", "the invoice's external_id is not the callback's"
            )
        try:
            notice = providers.xendit_status(data.get("status"))
        except UnknownProviderStatus as exc:
            raise BadRequest("UNKNOWN_PROVIDER_STATUS", str(exc)) from None
        amount = data.get("paid_amount") if notice.kind == "paid" else data.get("amount")
        return Notification(
            order_id=external_id,
            kind=notice.kind,
            amount_idr=_answer_rupiah(amount, "xendit"),
            provider_ref=invoice_id,
            provider_status=str(data.get("status")),
        )

    def _invoice(self, invoice_id: str) -> dict | None:
        """``GET /v2/invoices/{id}``: the invoice as Xendit sees it (None: unknown)."""
        try:
            answer = self._http.request("GET", f"/v2/invoices/{quote(invoice_id, safe='')}")
        except ProviderUnavailable as exc:
            raise _unavailable(exc) from None
        if answer.status == 404:
            return None
        if answer.status >= 300:
            raise _bad_answer(f"xendit get-invoice answered HTTP {answer.status}")
        return answer.body

    def view(self, order_id: str, provider_ref: str | None) -> tuple[str, int] | None:
        if not provider_ref:
            return None
        data = self._invoice(provider_ref)
        if data is None:
            return None
        notice = providers.xendit_status(data.get("status"))
        return notice.kind, _answer_rupiah(data.get("amount"), "xendit")
