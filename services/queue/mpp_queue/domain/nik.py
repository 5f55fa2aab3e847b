"""NIK (Nomor Induk Kependudukan) structure checks, keyed hashing and masking.

A NIK is personal data under UU 27/2022. The queue only needs to *match* a citizen (same person
booked three times and missed) and to *show* a hint of which card was used, so the service keeps a
keyed hash and the last four digits, never the number itself. Nothing here puts a NIK into an
exception message, a ``repr`` or a log line.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import date
from typing import Literal

NIK_LENGTH = 16
FEMALE_DAY_OFFSET = 40

PROVINCE_CODES = frozenset(
    {
        *range(11, 20),  # Sumatra: Aceh .. Bangka Belitung
        21,  # Kepulauan Riau
        *range(31, 37),  # Java: DKI Jakarta .. Banten
        *range(51, 54),  # Bali, NTB, NTT
        *range(61, 66),  # Kalimantan
        *range(71, 77),  # Sulawesi
        81,  # Maluku
        82,  # Maluku Utara
        *range(91, 97),  # Papua and the provinces split from it since 2022
    }
)
"""Two-digit province codes (Kemendagri). Papua's codes changed over time (91/94 old, 93-96 new), so
the whole 91-96 range is accepted rather than rejecting a card issued under an older code."""

Reason = Literal["length", "digits", "region", "birth_date"]


class InvalidNik(ValueError):
    """The string is not a structurally valid NIK.

    ``reason`` is machine-readable so the gateway can say *what* is wrong without echoing the
    number.
    """

    def __init__(self, reason: Reason) -> None:
        self.reason = reason
        super().__init__(f"invalid NIK: {reason}")


@dataclass(frozen=True)
class NikInfo:
    """What a NIK tells us, minus the number itself (only its last four digits, for display)."""

    birth_date: date
    sex: Literal["F", "M"]
    region_code: str
    last4: str


def _resolve_year(two_digit_year: int, day: int, month: int, today: date) -> date:
    """Put the birth date in the most recent century that does not make it a future date."""
    century = today.year - today.year % 100
    try:
        candidate = date(century + two_digit_year, month, day)
    except ValueError:
        candidate = None
    if candidate is not None and candidate <= today:
        return candidate
    # The previous century: raises ValueError for e.g. 29 Feb 1900, which the caller reports.
    return date(century - 100 + two_digit_year, month, day)


def validate_nik(nik: str, today: date | None = None) -> NikInfo:
    """Check a NIK's structure and return the facts encoded in it.

    This is a structural check only (Dukcapil alone can say a NIK exists). ``today`` fixes the
    century of the two-digit birth year: the most recent one in which the birth date is not in the
    future. Input is taken exactly as given (no stripping): normalising user input belongs to the
    schema.
    """
    if len(nik) != NIK_LENGTH:
        raise InvalidNik("length")
    if not (nik.isascii() and nik.isdigit()):
        raise InvalidNik("digits")
    province, regency, district = int(nik[0:2]), nik[2:4], nik[4:6]
    if province not in PROVINCE_CODES or regency == "00" or district == "00":
        raise InvalidNik("region")
    day, month, year = int(nik[6:8]), int(nik[8:10]), int(nik[10:12])
    sex: Literal["F", "M"] = "M"
    if day > FEMALE_DAY_OFFSET:
        sex = "F"
        day -= FEMALE_DAY_OFFSET
    try:
        birth_date = _resolve_year(year, day, month, today or date.today())
    except ValueError:
        raise InvalidNik("birth_date") from None
    return NikInfo(birth_date=birth_date, sex=sex, region_code=nik[0:6], last4=nik[12:16])


def nik_hash(nik: str, key: str) -> str:
    """Keyed hash (HMAC-SHA256, hex) for matching a citizen without storing the NIK.

    Keyed, not a plain SHA-256: NIKs have little entropy (region + birth date + serial), so an
    unkeyed hash could be reversed by enumeration. The key lives in the service's secret settings.
    """
    if not key:
        raise ValueError("nik_hash needs a non-empty key")
    return hmac.new(key.encode(), nik.encode(), hashlib.sha256).hexdigest()


def mask_nik(last4: str) -> str:
    """Display form of a NIK from its last four digits: ``************1234``.

    Takes only the last four digits so that callers never need the full number to render it.
    """
    if len(last4) != 4 or not (last4.isascii() and last4.isdigit()):
        raise ValueError("mask_nik expects exactly the last 4 digits")
    return "*" * (NIK_LENGTH - 4) + last4
