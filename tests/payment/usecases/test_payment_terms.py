"""The payment service publishes its verdict for each version of a service it takes into its copy
of the catalogue (``payment_terms_set``, issue 20): the queue routes completions of a free
service past it by that verdict, which stays the payment service's own."""

from __future__ import annotations

from mpp_payment import usecases, verdicts
from tests.payment.usecases.conftest import plugged


def test_each_version_the_copy_takes_is_published_with_its_verdict(till):
    till(usecases.apply_catalogue_event, plugged(service_id="svc-a", fee_idr=0, version=1))
    till(usecases.apply_catalogue_event, plugged(service_id="svc-a", fee_idr=5000, version=3))
    till(usecases.apply_catalogue_event, plugged(service_id="svc-b", fee_idr=7500, version=1))

    assert [
        (e["service_id"], e["version"], e["payment_required"])
        for e in till.events("payment_terms_set")
    ] == [("svc-a", 1, False), ("svc-a", 3, True), ("svc-b", 1, True)]
    assert till.events("payment_terms_set")[0]["agency_id"] == plugged()["agency_id"]


def test_a_version_the_copy_does_not_take_publishes_nothing(till):
    till(usecases.apply_catalogue_event, plugged(fee_idr=5000, version=2))
    till(usecases.apply_catalogue_event, plugged(fee_idr=0, version=1))  # older: not taken
    till(usecases.apply_catalogue_event, plugged(fee_idr=5000, version=2))  # the same again

    assert [(e["version"], e["payment_required"]) for e in till.events("payment_terms_set")] == [
        (2, True)
    ]
    assert till(verdicts.invoice_amount, {"service_id": "svc-1", "fee_idr": 0}) == 5000
