"""A Midtrans-style provider: Core API charges (QRIS, VA, e-wallet), signature-key notices."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from mpp_contracts.errors import BadRequest, Conflict, ServiceUnavailable, Unauthorized
from mpp_payment.adapters.http import ProviderHttp, ProviderUnavailable
from mpp_payment.adapters.providers.base import (
    Charge,
    ChargeRequest,
    Notification,
    RefundDone,
    _answer_rupiah,
    _bad_answer,
    _json_object,
    _unavailable,
)
from mpp_payment.domain import providers, qris, signatures
from mpp_payment.domain.errors import InvalidQris, UnknownProviderStatus


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
