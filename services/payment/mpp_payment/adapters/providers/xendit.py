"""A Xendit-style provider: invoices (checkout URL), callback-token notices."""

from __future__ import annotations

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
    _rupiah,
    _text,
    _unavailable,
)
from mpp_payment.domain import providers, signatures
from mpp_payment.domain.errors import UnknownProviderStatus


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
