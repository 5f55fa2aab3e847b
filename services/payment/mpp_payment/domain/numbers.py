"""Identifiers and deadlines handed to citizens and providers.

Everything here is deterministic: computing a number twice for the same payment gives the same
number, so a retried provider call (after a timeout) cannot create a second account or order.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from datetime import date, datetime, timedelta

VA_LENGTH = 16
MAX_RECEIPT_SEQ = 999_999
MAX_PROVIDER_ORDER_ID = 50  # Midtrans order_id limit; Xendit's external_id allows more

DEFAULT_EXPIRY_MINUTES: Mapping[str, int] = {
    "qris": 30,
    "ewallet": 15,
    "virtual_account": 24 * 60,
}
"""QRIS and e-wallets are paid at the counter, phone in hand: a short life stops a stale QR being
paid hours later (QRIS 30 min: the citizen may pay after leaving the counter; config.yaml's
``QRIS_EXPIRY_MINUTES`` has the same default). A virtual account may be paid from a bank branch or
another device, so it keeps the 24 h that providers use by default. Each deployment may override
these in settings."""

_DIGITS = re.compile(r"[0-9]+")
_MALL_CODE = re.compile(r"[A-Z0-9]{2,10}")
_ORDER_ID = re.compile(r"[A-Za-z0-9\-_.~]+")


def luhn_check_digit(digits: str) -> str:
    """Luhn (mod 10) check digit, so a mistyped VA number is refused by the bank, not misrouted."""
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char)
        if index % 2 == 0:
            value *= 2
            value -= 9 if value > 9 else 0
        total += value
    return str((10 - total % 10) % 10)


def virtual_account_number(
    bank_prefix: str, payment_seq_or_id: int | str, *, length: int = VA_LENGTH
) -> str:
    """``bank_prefix`` + zero-padded body + Luhn check digit, ``length`` digits in all.

    An integer sequence is used as is (unique by construction; it must fit in the body). A string
    id (e.g. a UUID) is hashed with SHA-256 into the body: deterministic, but two ids can collide,
    so the store must keep a unique constraint and the caller retry with the sequence on conflict.
    """
    if not _DIGITS.fullmatch(bank_prefix):
        raise ValueError(f"bank prefix must be digits, got {bank_prefix!r}")
    body_length = length - len(bank_prefix) - 1
    if body_length < 1:
        raise ValueError(f"prefix {bank_prefix!r} leaves no room in {length} digits")
    if isinstance(payment_seq_or_id, bool):
        raise TypeError("payment sequence must be an int or an id string")
    if isinstance(payment_seq_or_id, int):
        if not 0 < payment_seq_or_id < 10**body_length:
            raise ValueError(f"sequence {payment_seq_or_id} does not fit {body_length} digits")
        body_value = payment_seq_or_id
    elif isinstance(payment_seq_or_id, str) and payment_seq_or_id:
        digest = hashlib.sha256(payment_seq_or_id.encode("utf-8")).digest()
        body_value = int.from_bytes(digest, "big") % 10**body_length
    else:
        raise ValueError("payment id must be a non-empty string or a positive int")
    partial = f"{bank_prefix}{body_value:0{body_length}d}"
    return partial + luhn_check_digit(partial)


def ewallet_reference(payment_id: str, attempt: int = 1, *, prefix: str = "MPP") -> str:
    """Order id sent to an e-wallet provider: ``<prefix>-<payment_id>-<attempt>``.

    Providers refuse a reused order id, so a new charge attempt (the citizen switched from GoPay to
    OVO) needs a new one, while a retry of the *same* attempt must reuse it to stay idempotent.
    The payment id is readable in the provider's dashboard, which helps manual reconciliation.
    """
    if not isinstance(attempt, int) or isinstance(attempt, bool) or attempt < 1:
        raise ValueError(f"attempt must be a positive integer, got {attempt!r}")
    reference = f"{prefix}-{payment_id}-{attempt}"
    if not payment_id or not _ORDER_ID.fullmatch(reference):
        raise ValueError(f"reference {reference!r} has characters providers refuse")
    if len(reference) > MAX_PROVIDER_ORDER_ID:
        raise ValueError(f"reference {reference!r} exceeds {MAX_PROVIDER_ORDER_ID} characters")
    return reference


def receipt_number(mall_code: str, day: date, seq: int) -> str:
    """Human receipt number ``<MALL>-<YYYYMMDD>-<seq:06d>``, e.g. ``MPP-20261128-000123``.

    The day is the mall-local day of payment and ``seq`` restarts daily, so numbers stay short
    enough to read out at a counter yet are unique per mall.
    """
    code = mall_code.upper()
    if not _MALL_CODE.fullmatch(code):
        raise ValueError(f"mall code must be 2-10 letters or digits, got {mall_code!r}")
    if not isinstance(seq, int) or isinstance(seq, bool) or not 0 < seq <= MAX_RECEIPT_SEQ:
        raise ValueError(f"receipt sequence must be 1..{MAX_RECEIPT_SEQ}, got {seq!r}")
    return f"{code}-{day:%Y%m%d}-{seq:06d}"


def expires_at(
    created_at: datetime, method: str, expiry_minutes: Mapping[str, int] = DEFAULT_EXPIRY_MINUTES
) -> datetime:
    """Deadline after which a pending payment expires; a method without a setting is an error
    rather than a silent default, because a wrong expiry either strands citizens or stale QRs."""
    if created_at.tzinfo is None:
        raise ValueError("created_at must be timezone-aware")
    try:
        minutes = expiry_minutes[method]
    except KeyError:
        raise ValueError(f"no expiry configured for method {method!r}") from None
    if not isinstance(minutes, int) or isinstance(minutes, bool) or minutes <= 0:
        raise ValueError(f"expiry for {method!r} must be a positive number of minutes")
    return created_at + timedelta(minutes=minutes)
