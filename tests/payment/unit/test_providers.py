import pytest

from mpp_payment.domain.providers import (
    Notice,
    UnknownProviderStatus,
    midtrans_status,
    xendit_status,
)


@pytest.mark.parametrize(
    ("status", "fraud", "kind"),
    [
        ("pending", None, "pending"),
        ("authorize", None, "pending"),
        ("settlement", None, "paid"),
        ("settlement", "accept", "paid"),
        ("capture", "accept", "paid"),
        ("capture", "challenge", "pending"),
        ("capture", "deny", "failed"),
        ("capture", None, "pending"),
        ("expire", None, "expired"),
        ("cancel", None, "cancelled"),
        ("deny", None, "failed"),
        ("failure", None, "failed"),
        ("refund", None, "refunded"),
        ("partial_refund", None, "partially_refunded"),
        ("SETTLEMENT", None, "paid"),
        (" capture ", "ACCEPT", "paid"),
    ],
)
def test_midtrans_mapping(status, fraud, kind):
    notice = midtrans_status(status, fraud)
    assert notice == Notice(kind=kind, provider="midtrans", provider_status=status)


@pytest.mark.parametrize(
    ("status", "fraud"),
    [("settled", None), ("paid", None), ("", None), (None, None), ("capture", "review")],
)
def test_midtrans_unknown_status_raises(status, fraud):
    with pytest.raises(UnknownProviderStatus):
        midtrans_status(status, fraud)


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        ("PENDING", "pending"),
        ("PAID", "paid"),
        ("SETTLED", "paid"),
        ("EXPIRED", "expired"),
        ("paid", "paid"),
    ],
)
def test_xendit_mapping(status, kind):
    assert xendit_status(status) == Notice(kind=kind, provider="xendit", provider_status=status)


@pytest.mark.parametrize("status", ["SETTLEMENT", "FAILED", "", None, "ACTIVE"])
def test_xendit_unknown_status_raises(status):
    with pytest.raises(UnknownProviderStatus):
        xendit_status(status)
