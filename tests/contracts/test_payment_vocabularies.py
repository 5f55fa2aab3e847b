"""The payment words on the wire have one home (mpp_contracts.payments); the payment service's
state machine, its providers and the gateway's OpenAPI all use it."""

from __future__ import annotations

from mpp_contracts import rpc
from mpp_contracts.payments import PAYMENT_METHODS, PAYMENT_STATUSES, PaymentStatus
from mpp_gateway.schemas.payment import PaymentSchema
from mpp_payment.adapters import providers
from mpp_payment.domain import states


def test_the_words_on_the_wire_do_not_change():
    assert PAYMENT_METHODS == ("qris", "virtual_account", "ewallet")
    assert PAYMENT_STATUSES == (
        "pending",
        "paid",
        "expired",
        "failed",
        "cancelled",
        "partially_refunded",
        "refunded",
    )


def test_every_status_has_its_transitions_in_the_state_machine():
    assert states.PaymentStatus is PaymentStatus
    assert set(states.ALLOWED) == set(PaymentStatus)


def test_the_rpc_contract_providers_and_openapi_read_the_same_vocabulary():
    assert rpc.PAYMENT_METHODS == providers.METHODS == PAYMENT_METHODS
    fields = PaymentSchema().fields
    assert fields["method"].metadata["enum"] == list(PAYMENT_METHODS)
    assert fields["status"].metadata["enum"] == list(PAYMENT_STATUSES)
