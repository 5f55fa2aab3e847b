"""QRIS payloads: EMVCo merchant-presented QR (MPM) as profiled by Bank Indonesia.

A QRIS string is a flat list of TLV fields (2-digit tag, 2-digit length, value) closed by tag 63
holding a CRC-16/CCITT-FALSE over everything before it (including the literal ``6304``). We build
*dynamic* QRIS only: the string carries the exact invoice amount and the bill number, so a citizen
cannot pay a wrong amount and a payment can be tied back to its invoice. ``parse_qris`` is strict
because a QR we parse (e.g. one returned by a provider) is about to be shown to a citizen who will
pay whatever it says.
"""

from __future__ import annotations

import binascii
import io
import re
import unicodedata
from dataclasses import dataclass

import segno

from .errors import InvalidAmount, InvalidQris

QRIS_GUI = "ID.CO.QRIS.WWW"
"""GUI of the national QRIS repository (tag 51), also our default GUI for tag 26."""

CURRENCY_IDR = "360"
COUNTRY_ID = "ID"
MAX_NAME = 25
MAX_CITY = 15
MAX_AMOUNT_CHARS = 13

_TAG = re.compile(r"[0-9]{2}")
_DIGITS = re.compile(r"[0-9]+")
_AMOUNT = re.compile(r"([0-9]+)(?:\.([0-9]{1,2}))?")
_HEX4 = re.compile(r"[0-9A-Fa-f]{4}")
_CRITERIA = re.compile(r"[A-Z]{3}")
_NMID = re.compile(r"ID[0-9A-Z]{1,13}")


def crc16_ccitt_false(data: bytes) -> int:
    """CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF, no reflection, no final XOR): the standard
    library's ``binascii.crc_hqx`` with the initial value 0xFFFF is exactly this CRC (the tests
    check the catalogue's check value 0x29B1 for ``123456789`` and a bank-issued QRIS)."""
    return binascii.crc_hqx(data, 0xFFFF)


def _crc_hex(text_before_crc: str) -> str:
    return f"{crc16_ccitt_false(text_before_crc.encode('ascii')):04X}"


def tlv(tag: str, value: str) -> str:
    """Encode one field.

    Values must be non-empty printable ASCII of at most 99 characters: EMVCo lengths count
    characters while the CRC runs over bytes, so multi-byte characters would let wallets disagree.
    """
    if not _TAG.fullmatch(tag):
        raise ValueError(f"tag must be two digits, got {tag!r}")
    if not value:
        raise ValueError(f"tag {tag}: value must not be empty")
    if not (value.isascii() and value.isprintable()):
        raise ValueError(f"tag {tag}: value must be printable ASCII")
    if len(value) > 99:
        raise ValueError(f"tag {tag}: value longer than 99 characters")
    return f"{tag}{len(value):02d}{value}"


def parse_tlv(payload: str) -> dict[str, str]:
    """Split a TLV string into ``{tag: value}`` in payload order.

    Works for the top level and for templates (26-51, 62) alike. A duplicated tag is rejected: two
    different amounts or merchant ids in one QR would let two readers see two different payments.
    """
    fields: dict[str, str] = {}
    position = 0
    while position < len(payload):
        header = payload[position : position + 4]
        if len(header) < 4:
            raise InvalidQris(f"truncated field header at offset {position}")
        tag, length_text = header[:2], header[2:]
        if not _TAG.fullmatch(tag) or not _TAG.fullmatch(length_text):
            raise InvalidQris(f"malformed field header {header!r} at offset {position}")
        length = int(length_text)
        if length == 0:
            raise InvalidQris(f"tag {tag} has zero length")
        value = payload[position + 4 : position + 4 + length]
        if len(value) != length:
            raise InvalidQris(f"tag {tag} declares {length} characters, {len(value)} present")
        if tag in fields:
            raise InvalidQris(f"tag {tag} appears twice")
        fields[tag] = value
        position += 4 + length
    return fields


def _clean_text(text: str, limit: int, what: str) -> str:
    """Fold to ASCII (``Dukcapil Kota Bekasi`` stays readable) and trim to ``limit``."""
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    folded = " ".join("".join(ch for ch in folded if ch.isprintable()).split())
    if not folded:
        raise ValueError(f"{what} is empty once reduced to ASCII")
    return folded[:limit].rstrip()


def build_dynamic_qris(
    *,
    merchant_name: str,
    merchant_city: str,
    nmid: str,
    merchant_pan: str,
    amount_idr: int,
    bill_number: str,
    postal_code: str | None = None,
    mcc: str = "9399",
    merchant_id: str | None = None,
    merchant_criteria: str = "UMI",
    acquirer_gui: str = QRIS_GUI,
) -> str:
    """Build a single-use QRIS for one invoice.

    Tag 26 is the acquirer's merchant account (GUI, PAN, merchant id, criteria); tag 51 is the
    national repository entry (``ID.CO.QRIS.WWW``, NMID, criteria) wallets use to name the merchant.
    ``merchant_id`` defaults to the NMID and ``acquirer_gui`` to the national GUI for agencies whose
    acquirer gave no own values. MCC 9399 is "government services, not elsewhere classified".
    """
    if not isinstance(amount_idr, int) or isinstance(amount_idr, bool) or amount_idr <= 0:
        raise InvalidAmount(f"amount must be a positive integer of rupiah, got {amount_idr!r}")
    amount_text = str(amount_idr)
    if len(amount_text) > MAX_AMOUNT_CHARS:
        raise InvalidAmount(f"amount {amount_idr} does not fit in {MAX_AMOUNT_CHARS} characters")
    if not (_DIGITS.fullmatch(merchant_pan) and 16 <= len(merchant_pan) <= 19):
        raise ValueError("merchant PAN must be 16 to 19 digits")
    if not _NMID.fullmatch(nmid):
        raise ValueError(f"NMID must look like 'ID' followed by up to 13 digits, got {nmid!r}")
    if not (_DIGITS.fullmatch(mcc) and len(mcc) == 4):
        raise ValueError(f"MCC must be 4 digits, got {mcc!r}")
    if not _CRITERIA.fullmatch(merchant_criteria):
        raise ValueError(f"merchant criteria must be 3 capital letters, got {merchant_criteria!r}")
    if len(bill_number) > 25:
        raise ValueError("bill number longer than 25 characters")
    if postal_code is not None and not (_DIGITS.fullmatch(postal_code) and len(postal_code) <= 10):
        raise ValueError(f"postal code must be up to 10 digits, got {postal_code!r}")

    merchant_account = (
        tlv("00", acquirer_gui)
        + tlv("01", merchant_pan)
        + tlv("02", merchant_id if merchant_id is not None else nmid)
        + tlv("03", merchant_criteria)
    )
    national = tlv("00", QRIS_GUI) + tlv("02", nmid) + tlv("03", merchant_criteria)
    body = (
        tlv("00", "01")
        + tlv("01", "12")
        + tlv("26", merchant_account)
        + tlv("51", national)
        + tlv("52", mcc)
        + tlv("53", CURRENCY_IDR)
        + tlv("54", amount_text)
        + tlv("58", COUNTRY_ID)
        + tlv("59", _clean_text(merchant_name, MAX_NAME, "merchant name"))
        + tlv("60", _clean_text(merchant_city, MAX_CITY, "merchant city"))
        + (tlv("61", postal_code) if postal_code is not None else "")
        + tlv("62", tlv("01", bill_number))
        + "6304"
    )
    return body + _crc_hex(body)


@dataclass(frozen=True)
class QrisData:
    """What a QRIS says, after its CRC and structure were checked."""

    point_of_initiation: str  # 'static' (11) or 'dynamic' (12)
    merchant_account: dict[str, str]  # tag 26 sub-fields, empty when absent
    nmid: str
    merchant_pan: str | None
    merchant_criteria: str | None
    mcc: str
    currency: str
    amount_idr: int | None
    country: str
    merchant_name: str
    merchant_city: str
    postal_code: str | None
    bill_number: str | None
    crc: str
    fields: dict[str, str]


def _parse_amount(text: str) -> int:
    """Accept ``10000`` and also ``10000.00`` (some generators add cents); refuse real fractions."""
    match = _AMOUNT.fullmatch(text)
    if match is None or len(text) > MAX_AMOUNT_CHARS:
        raise InvalidQris(f"malformed amount {text!r}")
    whole, fraction = match.groups()
    if fraction is not None and int(fraction) != 0:
        raise InvalidQris(f"amount {text!r} has a fraction of a rupiah")
    amount = int(whole)
    if amount <= 0:
        raise InvalidQris("amount must be positive")
    return amount


def _required(fields: dict[str, str], tag: str, what: str) -> str:
    try:
        return fields[tag]
    except KeyError:
        raise InvalidQris(f"missing tag {tag} ({what})") from None


def parse_qris(payload: str) -> QrisData:
    """Parse and verify a QRIS string; any doubt raises ``InvalidQris``.

    The CRC is compared case-insensitively (the specification writes upper case, some generators do
    not), but it must be the last field, directly after ``6304``, and match the bytes before it.
    """
    if not isinstance(payload, str) or not payload.isascii():
        raise InvalidQris("payload must be an ASCII string")
    if len(payload) < 8 or payload[-8:-4] != "6304" or not _HEX4.fullmatch(payload[-4:]):
        raise InvalidQris("payload does not end with a CRC field 6304XXXX")
    crc = payload[-4:].upper()
    if _crc_hex(payload[:-4]) != crc:
        raise InvalidQris("CRC mismatch: payload altered or corrupted")
    fields = parse_tlv(payload)
    if list(fields)[-1] != "63":
        raise InvalidQris("CRC field is not the last field")
    if fields.get("00") != "01":
        raise InvalidQris("payload format indicator must be 01")
    initiation_code = _required(fields, "01", "point of initiation")
    initiation = {"11": "static", "12": "dynamic"}.get(initiation_code)
    if initiation is None:
        raise InvalidQris(f"unknown point of initiation {initiation_code!r}")
    currency = _required(fields, "53", "currency")
    if currency != CURRENCY_IDR:
        raise InvalidQris(f"currency {currency!r} is not IDR (360)")
    country = _required(fields, "58", "country")
    if country != COUNTRY_ID:
        raise InvalidQris(f"country {country!r} is not ID")
    national = parse_tlv(_required(fields, "51", "national merchant repository"))
    if national.get("00") != QRIS_GUI:
        raise InvalidQris("tag 51 is not the QRIS national repository")
    nmid = _required(national, "02", "NMID")
    merchant_account = parse_tlv(fields["26"]) if "26" in fields else {}
    additional = parse_tlv(fields["62"]) if "62" in fields else {}
    amount = _parse_amount(fields["54"]) if "54" in fields else None
    if initiation == "dynamic" and amount is None:
        raise InvalidQris("a dynamic QRIS must carry its amount")
    return QrisData(
        point_of_initiation=initiation,
        merchant_account=merchant_account,
        nmid=nmid,
        merchant_pan=merchant_account.get("01"),
        merchant_criteria=national.get("03", merchant_account.get("03")),
        mcc=_required(fields, "52", "merchant category code"),
        currency=currency,
        amount_idr=amount,
        country=country,
        merchant_name=_required(fields, "59", "merchant name"),
        merchant_city=_required(fields, "60", "merchant city"),
        postal_code=fields.get("61"),
        bill_number=additional.get("01"),
        crc=crc,
        fields=fields,
    )


def _qr(payload: str) -> segno.QRCode:
    """Error correction M: QRIS is read off screens and paper; M survives glare and creases."""
    return segno.make_qr(payload, error="m", boost_error=False)


def qr_svg(payload: str, *, scale: int = 8) -> str:
    """SVG document (with XML declaration) showing the QR, quiet zone of 4 modules included."""
    buffer = io.BytesIO()
    _qr(payload).save(buffer, kind="svg", scale=scale, border=4, xmldecl=True)
    return buffer.getvalue().decode("utf-8")


def qr_png(payload: str, *, scale: int = 8) -> bytes:
    """PNG image of the QR, for receipts and kiosks that cannot render SVG."""
    buffer = io.BytesIO()
    _qr(payload).save(buffer, kind="png", scale=scale, border=4)
    return buffer.getvalue()
