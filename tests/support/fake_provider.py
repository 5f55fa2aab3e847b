"""A local fake payment provider: a real HTTP server on 127.0.0.1 answering the Midtrans Core API
(``/v2/charge``, ``/v2/{order_id}/status``) and the Xendit Invoice API (``/v2/invoices``,
``/v2/invoices/{id}``) from its own book of orders, with Basic auth as the providers ask.

Tests point the payment service's ``MIDTRANS_BASE_URL`` / ``XENDIT_BASE_URL`` at it, move an
order at "the provider" (:meth:`FakeProvider.settle`) and send the notices it would send
(:meth:`FakeProvider.midtrans_notice`, :meth:`FakeProvider.xendit_callback`). No internet.
"""

from __future__ import annotations

import base64
import json
import uuid
from urllib.parse import unquote

import eventlet
from eventlet import wsgi
from werkzeug.wrappers import Request, Response

from mpp_payment.domain import qris, signatures

MIDTRANS_KEY = "SB-Mid-server-FAKE"
XENDIT_KEY = "xnd_development_FAKE"
XENDIT_TOKEN = "fake-callback-token"
# the status_code Midtrans sends with each transaction_status (its "code statuses" page)
MIDTRANS_CODES = {
    "pending": "201",
    "settlement": "200",
    "capture": "200",
    "expire": "202",
    "cancel": "200",
    "deny": "202",
}


class _Quiet:
    def write(self, *_):
        pass


class FakeProvider:
    def __init__(self) -> None:
        self.midtrans: dict[str, dict] = {}  # order_id -> transaction
        self.xendit: dict[str, dict] = {}  # invoice id -> invoice
        self.calls: list[tuple[str, str]] = []  # (method, path) of every authenticated request
        self.down = False  # an outage: every charge answers 503
        self.charges = 0  # charges (Midtrans transactions, Xendit invoices) actually created
        self.on_charge = None  # called when a charge request arrives (what a test looks at then)
        self._answers: dict[str, dict] = {}  # Idempotency-Key -> the answer it first got
        self.failing = False  # every call fails, not only charges: see :meth:`fail`
        self.failed = 0  # calls answered by a failure
        self.hang_seconds = 3.0
        self.listener = eventlet.listen(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self._server = eventlet.spawn(
            wsgi.server, self.listener, self._app, log=_Quiet(), log_output=False
        )

    def stop(self) -> None:
        self._server.kill()
        self.listener.close()

    def fail(self, failing: bool = True, hang_seconds: float = 3.0) -> None:
        """An outage: every API call in turn times out (the answer comes after ``hang_seconds``,
        longer than the client waits) or answers 503, until ``fail(False)``. Nothing is done."""
        self.failing, self.hang_seconds = failing, hang_seconds

    # -- what happens at the provider --------------------------------------------------------

    def settle(self, order_id: str) -> None:
        """The citizen paid: Midtrans settles the order / Xendit marks the invoice PAID."""
        if order_id in self.midtrans:
            self.midtrans[order_id]["transaction_status"] = "settlement"
            return
        invoice = self.xendit_invoice(order_id)
        invoice.update(status="PAID", paid_amount=invoice["amount"])

    def xendit_invoice(self, external_id: str) -> dict:
        return next(i for i in self.xendit.values() if i["external_id"] == external_id)

    def midtrans_notice(self, order_id: str, **edits) -> bytes:
        """The notification Midtrans sends for the order's current state, genuinely signed;
        ``edits`` change fields after signing (what an attacker can do)."""
        order = self.midtrans[order_id]
        status = order["transaction_status"]
        body = {
            "transaction_time": "2026-12-05 10:00:00",
            "transaction_status": status,
            "transaction_id": order["transaction_id"],
            "status_message": "midtrans payment notification",
            "status_code": MIDTRANS_CODES[status],
            "payment_type": "qris",
            "order_id": order_id,
            "merchant_id": "G000000000",
            "gross_amount": order["gross_amount"],
            "fraud_status": "accept",
            "currency": "IDR",
        }
        body["signature_key"] = signatures.midtrans_signature(
            order_id, body["status_code"], body["gross_amount"], MIDTRANS_KEY
        )
        return json.dumps({**body, **edits}).encode()

    def xendit_callback(self, order_id: str, **edits) -> bytes:
        """The invoice callback Xendit sends for the invoice of ``order_id`` (its external_id),
        authenticated by the x-callback-token header only; ``edits`` change its fields."""
        return json.dumps({**self.xendit_invoice(order_id), **edits}).encode()

    # -- the HTTP API --------------------------------------------------------------------------

    def _app(self, environ, start_response):
        request = Request(environ)
        response = self._answer(request)
        return response(environ, start_response)

    def _answer(self, request: Request) -> Response:
        if self.failing:
            self.failed += 1
            if self.failed % 2:
                eventlet.sleep(self.hang_seconds)
                return _json({"status_code": "504", "status_message": "Gateway timeout"}, 504)
            return _json({"status_code": "503", "status_message": "Service unavailable"}, 503)
        user = _basic_user(request.headers.get("Authorization", ""))
        if user not in (MIDTRANS_KEY, XENDIT_KEY):
            return _json({"status_code": "401", "status_message": "Unknown merchant"}, 401)
        path = request.path
        self.calls.append((request.method, path))
        body = request.get_json(silent=True) or {}
        parts = [unquote(p) for p in path.strip("/").split("/")]
        if request.method == "POST" and path in ("/v2/charge", "/v2/invoices") and self.on_charge:
            self.on_charge()
        if request.method == "POST" and path in ("/v2/charge", "/v2/invoices") and self.down:
            return _json({"status_code": "503", "status_message": "down for maintenance"}, 503)
        key = request.headers.get("Idempotency-Key")
        if request.method == "POST" and key in self._answers:
            return _json(self._answers[key])  # a retry with its key: the first answer again
        if request.method == "POST" and path == "/v2/charge":
            order = body["transaction_details"]["order_id"]
            if order in self.midtrans:  # as Midtrans: a reused order id is refused
                return _json({"status_code": "406", "status_message": "duplicate order_id"})
            return _json(self._remember(key, self._charge(body)))
        if request.method == "GET" and len(parts) == 3 and parts[2] == "status":
            order = self.midtrans.get(parts[1])
            if order is None:
                return _json({"status_code": "404", "status_message": "Transaction doesn't exist."})
            code = MIDTRANS_CODES[order["transaction_status"]]
            return _json({**order, "order_id": parts[1], "status_code": code})
        if request.method == "POST" and path == "/v2/invoices":
            return _json(self._remember(key, self._invoice(body)))
        if request.method == "GET" and parts[:2] == ["v2", "invoices"] and len(parts) == 3:
            invoice = self.xendit.get(parts[2])
            if invoice is None:
                return _json({"error_code": "INVOICE_NOT_FOUND_ERROR"}, 404)
            return _json(invoice)
        return _json({"status_code": "404", "status_message": "no such path"}, 404)

    def _remember(self, key: str | None, answer: dict) -> dict:
        self.charges += 1
        if key:
            self._answers[key] = answer
        return answer

    def _charge(self, body: dict) -> dict:
        details = body["transaction_details"]
        order_id, amount = details["order_id"], int(details["gross_amount"])
        transaction = {
            "transaction_id": str(uuid.uuid4()),
            "transaction_status": "pending",
            "gross_amount": f"{amount}.00",
            "fraud_status": "accept",
            "payment_type": body["payment_type"],
        }
        self.midtrans[order_id] = transaction
        answer = {**transaction, "order_id": order_id, "status_code": "201"}
        if body["payment_type"] == "qris":
            answer["qr_string"] = qris.build_dynamic_qris(
                amount_idr=amount,
                bill_number=order_id[:8].upper(),
                merchant_name="FAKE ACQUIRER",
                merchant_city="JAKARTA",
                nmid="ID1020000000009",
                merchant_pan="9360000000000000009",
            )
        elif body["payment_type"] == "bank_transfer":
            answer["va_numbers"] = [{"bank": "bca", "va_number": "12345678901"}]
        return answer

    def _invoice(self, body: dict) -> dict:
        invoice = {
            "id": uuid.uuid4().hex[:24],
            "external_id": body["external_id"],
            "user_id": "5781d19b2e2385880609791c",
            "status": "PENDING",
            "merchant_name": "Mal Pelayanan Publik",
            "amount": body["amount"],
            "currency": "IDR",
        }
        invoice["invoice_url"] = f"https://checkout.xendit.co/web/{invoice['id']}"
        self.xendit[invoice["id"]] = invoice
        return invoice


def _basic_user(header: str) -> str | None:
    if not header.startswith("Basic "):
        return None
    try:
        return base64.b64decode(header[6:]).decode().partition(":")[0]
    except ValueError:
        return None


def _json(body: dict, status: int = 200) -> Response:
    return Response(json.dumps(body), status=status, mimetype="application/json")
