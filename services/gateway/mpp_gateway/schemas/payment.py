"""Response schemas of the payment routes (OpenAPI and response checks)."""

from __future__ import annotations

from marshmallow import Schema, fields

from mpp_contracts.payments import PAYMENT_METHODS, PAYMENT_STATUSES

Money = fields.Integer


class QrisSchema(Schema):
    payload = fields.String(
        required=True, metadata={"description": "EMVCo QRIS payload, ends with 6304 + CRC-16"}
    )
    image_png = fields.String(required=True, metadata={"description": "path of the PNG image"})
    image_svg = fields.String(required=True, metadata={"description": "path of the SVG image"})


class ReceiptSchema(Schema):
    number = fields.String(required=True, metadata={"example": "MPP-20261128-000123"})
    paid_at = fields.String(required=True)
    amount_idr = Money(required=True)


class PaymentSchema(Schema):
    id = fields.String(required=True)
    ticket_id = fields.String(required=True)
    ticket_number = fields.String(allow_none=True)
    agency_id = fields.String(required=True)
    service_id = fields.String(required=True)
    amount_idr = Money(required=True)
    status = fields.String(required=True, metadata={"enum": list(PAYMENT_STATUSES)})
    method = fields.String(required=True, metadata={"enum": list(PAYMENT_METHODS)})
    provider = fields.String(required=True)
    attempt = fields.Integer(
        required=True, metadata={"description": "the current charge attempt (1, 2, … per method)"}
    )
    charge_status = fields.String(
        required=True,
        metadata={
            "enum": ["preparing", "ready"],
            "description": "preparing: the invoice exists, its provider charge (QRIS, VA, "
            "e-wallet) is still being made; no method details and no deadline yet",
        },
    )
    qris = fields.Nested(QrisSchema, allow_none=True)
    va_number = fields.String(allow_none=True)
    ewallet_ref = fields.String(allow_none=True)
    checkout_url = fields.String(allow_none=True)
    expires_at = fields.String(required=True)
    paid_at = fields.String(allow_none=True)
    refunded_idr = Money(required=True)
    overpaid_idr = Money(
        required=True,
        metadata={"description": "paid twice (an old attempt, a second payment), not refunded"},
    )
    flag = fields.String(
        allow_none=True,
        metadata={"description": "amount_mismatch, paid_after_expiry, late_notice, overpayment"},
    )
    receipt = fields.Nested(ReceiptSchema, allow_none=True)


class RefundSchema(Schema):
    id = fields.String(required=True)
    payment_id = fields.String(required=True)
    amount_idr = Money(required=True)
    reason = fields.String(allow_none=True)
    status = fields.String(required=True, metadata={"enum": ["succeeded", "pending"]})
    provider_ref = fields.String(allow_none=True)
    created_at = fields.String(required=True)
    payment_status = fields.String(required=True)
    refunded_total_idr = Money(required=True)
    overpayment = fields.Boolean(
        required=True,
        metadata={"description": "true: it returned an overpayment (refunded before the payment)"},
    )


class NotificationResultSchema(Schema):
    payment_id = fields.String(required=True)
    result = fields.String(
        required=True, metadata={"enum": ["applied", "duplicate", "flagged", "refused", "noted"]}
    )
    status = fields.String(required=True)
    flag = fields.String(allow_none=True)


class SimulatorPaySchema(Schema):
    payment_id = fields.String(required=True)
    notification = fields.String(required=True)
    webhook = fields.String(required=True)


class LedgerCheckSchema(Schema):
    account = fields.String(required=True)
    net_idr = Money(required=True)
    balanced = fields.Boolean(required=True)


class SettlementLineSchema(Schema):
    payment_id = fields.String(required=True)
    ticket_number = fields.String(required=True)
    service_code = fields.String(required=True)
    method = fields.String(required=True)
    paid_idr = Money(required=True)
    refunded_idr = Money(required=True)
    net_idr = Money(required=True)
    paid_at = fields.String(allow_none=True)
    receipt_number = fields.String(allow_none=True)


class OverpaymentSchema(Schema):
    payment_id = fields.String(required=True)
    order_id = fields.String(required=True)
    attempt = fields.Integer(required=True)
    ticket_number = fields.String(allow_none=True)
    method = fields.String(allow_none=True)
    amount_idr = Money(required=True)
    refunded_idr = Money(required=True)
    outstanding_idr = Money(required=True)
    paid_at = fields.String(allow_none=True)


class SuspenseCheckSchema(Schema):
    account = fields.String(required=True)
    net_idr = Money(required=True)
    balanced = fields.Boolean(required=True)


class SettlementSchema(Schema):
    agency_id = fields.String(required=True)
    date = fields.String(required=True)
    timezone = fields.String(required=True)
    count = fields.Integer(required=True)
    gross_idr = Money(required=True)
    refunds_idr = Money(required=True)
    net_idr = Money(required=True, metadata={"description": "gross - refunds, to the rupiah"})
    ledger = fields.Nested(LedgerCheckSchema, required=True)
    lines = fields.List(fields.Nested(SettlementLineSchema), required=True)
    overpayments_idr = Money(required=True, metadata={"description": "owed to citizens"})
    overpayment_refunds_idr = Money(required=True)
    suspense = fields.Nested(SuspenseCheckSchema, required=True)
    overpayments = fields.List(fields.Nested(OverpaymentSchema), required=True)


class ViewSchema(Schema):
    status = fields.String(required=True)
    amount_idr = Money(required=True)


class MismatchSchema(Schema):
    payment_id = fields.String(required=True)
    order_id = fields.String(required=True, metadata={"description": "the charge attempt's"})
    attempt = fields.Integer(allow_none=True)
    kind = fields.String(
        required=True,
        metadata={
            "enum": ["missing_at_provider", "missing_here", "status_differs", "amount_differs"]
        },
    )
    ours = fields.Nested(ViewSchema, allow_none=True)
    provider = fields.Nested(ViewSchema, allow_none=True)


class ReconciliationSchema(Schema):
    agency_id = fields.String(required=True)
    date = fields.String(required=True)
    checked = fields.Integer(required=True)
    mismatches = fields.List(fields.Nested(MismatchSchema), required=True)
    overpayments = fields.List(fields.Nested(OverpaymentSchema), required=True)
