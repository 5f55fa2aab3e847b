"""The payment vocabularies the services and the API share: how an invoice can be paid, and the
states it goes through.

The payment service owns the facts (its domain's state machine moves a payment between these
states); the RPC contract validates a chosen method and the gateway documents both in its
OpenAPI. All of them read the words from here. Standard library only, so a domain may import it.
"""

from __future__ import annotations

from enum import StrEnum


class PaymentMethod(StrEnum):
    QRIS = "qris"
    VIRTUAL_ACCOUNT = "virtual_account"
    EWALLET = "ewallet"


class PaymentStatus(StrEnum):
    PENDING = "pending"
    PAID = "paid"
    EXPIRED = "expired"
    FAILED = "failed"
    CANCELLED = "cancelled"
    PARTIALLY_REFUNDED = "partially_refunded"
    REFUNDED = "refunded"


PAYMENT_METHODS = tuple(method.value for method in PaymentMethod)
PAYMENT_STATUSES = tuple(status.value for status in PaymentStatus)
