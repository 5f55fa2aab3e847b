"""The offline simulator: a provider that lives in the payment database (test double)."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime

from sqlalchemy import bindparam, select, text, update

from mpp_chassis.prepared import PREPARE
from mpp_contracts.errors import BadRequest, Conflict, Unauthorized
from mpp_payment.adapters.providers.base import (
    Charge,
    ChargeRequest,
    Notification,
    RefundDone,
    _json_object,
    _rupiah,
)
from mpp_payment.adapters.tables import simulator_book
from mpp_payment.domain import numbers, qris, signatures

_BOOK_COLUMNS = (
    "order_id",
    "idempotency_key",
    "status",
    "amount_idr",
    "refunded_idr",
    "expires_at",
    "updated_at",
)
# an order opened once: a retried charge (same idempotency key, same order) leaves the book as
# it is; one statement, where a read and an insert took two (text: built once, see usecases)
_OPEN_ORDER = text(
    f"INSERT INTO {simulator_book.name} ({', '.join(_BOOK_COLUMNS)}) "  # noqa: S608 - a Table's
    f"VALUES ({', '.join(':' + c for c in _BOOK_COLUMNS)}) ON CONFLICT DO NOTHING"
).bindparams(*(bindparam(c, type_=simulator_book.c[c].type) for c in _BOOK_COLUMNS))
_MARK_PAID = (
    update(simulator_book)
    .where(simulator_book.c.order_id == bindparam("order"), simulator_book.c.status == "pending")
    .values(status="paid", updated_at=bindparam("at"))
    .returning(simulator_book.c.amount_idr)
    .execution_options(**PREPARE)  # by key: planned once per connection
)


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
        self._session.execute(
            _OPEN_ORDER,
            {
                "order_id": request.order_id,
                "idempotency_key": request.idempotency_key,
                "status": "pending",
                "amount_idr": request.amount_idr,
                "refunded_idr": 0,
                "expires_at": request.expires_at,
                "updated_at": request.expires_at,
            },
        )
        return charge

    def record_paid(self, order_id: str, at: datetime) -> int:
        """The citizen paid at the simulated provider: its book says paid, whatever we think."""
        paid = self._session.execute(_MARK_PAID, {"order": order_id, "at": at}).scalar()
        if paid is not None:
            return paid
        row = self._row(order_id)  # paid before, or no such order
        if row is None:
            raise BadRequest("UNKNOWN_ORDER", "the simulator has no such order")
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
