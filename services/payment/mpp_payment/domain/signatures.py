"""Authenticity checks for provider notifications.

A forged "settlement" webhook would mark an unpaid invoice as paid, so every check here fails
closed: missing or non-text fields and empty secrets give ``False`` (never an exception a caller
might catch too broadly), and comparisons are constant-time so a signature cannot be guessed
byte by byte.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from typing import Any

MIDTRANS_FIELDS = ("order_id", "status_code", "gross_amount", "signature_key")


def _same(given: str, expected: str) -> bool:
    # Bytes, not str: compare_digest refuses non-ASCII str, and a hostile header may contain some.
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


def midtrans_signature(order_id: str, status_code: str, gross_amount: str, server_key: str) -> str:
    """SHA-512 hex of ``order_id + status_code + gross_amount + server_key``, as Midtrans signs.

    ``gross_amount`` is the text Midtrans sent (``'10000.00'``), not our integer: reformatting it
    would change the digest.
    """
    text = order_id + status_code + gross_amount + server_key
    return hashlib.sha512(text.encode("utf-8")).hexdigest()


def verify_midtrans(notification: Mapping[str, Any], server_key: str) -> bool:
    """True only if the notification's ``signature_key`` matches the one computed with our key."""
    if not server_key:
        return False
    values = [notification.get(name) for name in MIDTRANS_FIELDS]
    if not all(isinstance(value, str) for value in values):
        return False
    order_id, status_code, gross_amount, signature_key = values
    expected = midtrans_signature(order_id, status_code, gross_amount, server_key)
    return _same(signature_key.lower(), expected)


def verify_xendit_token(header_value: str | None, expected_token: str) -> bool:
    """Compare the ``x-callback-token`` header with the account's token, in constant time.

    An empty expected token means the service is misconfigured; accepting an empty header then would
    let anyone post notices, so it is refused.
    """
    if not expected_token or not isinstance(header_value, str):
        return False
    return _same(header_value, expected_token)


def simulator_signature(body: bytes, secret: str) -> str:
    """HMAC-SHA256 hex of the raw request body, used by our own payment simulator.

    The raw body is signed (not a re-serialised dict) so whitespace or key order cannot matter.
    """
    return hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def verify_simulator(body: bytes, signature: str | None, secret: str) -> bool:
    """True only if ``signature`` is the HMAC of ``body`` under ``secret``."""
    if not secret or not isinstance(signature, str) or not isinstance(body, bytes | bytearray):
        return False
    return _same(signature.lower(), simulator_signature(bytes(body), secret))
