import pytest

from mpp_payment.domain.providers import (
    Notice,
    UnknownProviderStatus,
    midtrans_code_agrees,
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


@pytest.mark.parametrize(
    ("word", "code", "agrees"),
    [
        ("settlement", "200", True),
        ("capture", "200", True),
        ("capture", "201", True),  # card under fraud review ("challenge")
        ("pending", "201", True),
        ("expire", "202", True),
        ("expire", "407", True),
        ("deny", "202", True),
        ("Settlement ", "200", True),
        ("settlement", "201", False),  # a pending notice edited to settlement
        ("refund", "201", False),
        ("pending", "200", False),
        ("expire", "200", False),
        ("settlement", "500", False),
        (None, "200", False),
        ("settlement", 200, False),
    ],
)
def test_midtrans_status_word_must_go_with_its_signed_code(word, code, agrees):
    assert midtrans_code_agrees(word, code) is agrees
