import xml.etree.ElementTree as ET

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mpp_payment.domain.errors import InvalidAmount
from mpp_payment.domain.qris import (
    InvalidQris,
    build_dynamic_qris,
    crc16_ccitt_false,
    parse_qris,
    parse_tlv,
    qr_png,
    qr_svg,
    tlv,
)

# Hand-verified payload (also in docs/payment-rules.md): every field written out, CRC checked with
# binascii.crc_hqx(data, 0xFFFF), CPython's independent C implementation of the same CRC.
GOLDEN_FIELDS = [
    "000201",  # payload format indicator
    "010212",  # dynamic
    "2667"  # merchant account information, 67 characters:
    "0014ID.CO.QRIS.WWW"  # GUI
    "01199360001430000012345"  # PAN
    "0215ID1020021319208"  # merchant id (defaults to the NMID)
    "0303UMI",  # criteria
    "51440014ID.CO.QRIS.WWW0215ID10200213192080303UMI",  # national repository
    "52049399",  # MCC: government services
    "5303360",  # IDR
    "540550000",  # Rp 50.000
    "5802ID",
    "5920Dukcapil Kota Bekasi",
    "6006Bekasi",
    "610517141",
    "62120108INV-0001",  # bill number
    "6304",
]
GOLDEN_CRC = "9541"
GOLDEN = "".join(GOLDEN_FIELDS) + GOLDEN_CRC

GOLDEN_ARGS = dict(
    merchant_name="Dukcapil Kota Bekasi",
    merchant_city="Bekasi",
    nmid="ID1020021319208",
    merchant_pan="9360001430000012345",
    amount_idr=50_000,
    bill_number="INV-0001",
    postal_code="17141",
)


def _with_crc(body: str) -> str:
    return body + f"{crc16_ccitt_false(body.encode()):04X}"


def test_crc_standard_check_value():
    assert crc16_ccitt_false(b"123456789") == 0x29B1


def test_crc_of_empty_input_is_the_init_value():
    assert crc16_ccitt_false(b"") == 0xFFFF


def test_crc_of_hand_verified_payload():
    body = "".join(GOLDEN_FIELDS)
    assert f"{crc16_ccitt_false(body.encode()):04X}" == GOLDEN_CRC


def test_build_reproduces_hand_verified_payload():
    assert build_dynamic_qris(**GOLDEN_ARGS) == GOLDEN


@pytest.mark.parametrize(
    ("tag", "value", "expected"),
    [
        ("00", "01", "000201"),
        ("59", "A" * 25, "5925" + "A" * 25),
        ("62", "x" * 99, "6299" + "x" * 99),
    ],
)
def test_tlv_encodes_tag_length_value(tag, value, expected):
    assert tlv(tag, value) == expected


@pytest.mark.parametrize(
    ("tag", "value"),
    [("0", "x"), ("ab", "x"), ("100", "x"), ("59", ""), ("59", "x" * 100), ("59", "Café")],
)
def test_tlv_refuses_what_cannot_be_encoded(tag, value):
    with pytest.raises(ValueError):
        tlv(tag, value)


def test_parse_tlv_reads_top_level_and_nested_templates():
    fields = parse_tlv(GOLDEN)
    assert list(fields) == [
        "00", "01", "26", "51", "52", "53", "54", "58", "59", "60", "61", "62", "63",
    ]  # fmt: skip
    assert parse_tlv(fields["26"]) == {
        "00": "ID.CO.QRIS.WWW",
        "01": "9360001430000012345",
        "02": "ID1020021319208",
        "03": "UMI",
    }
    assert parse_tlv(fields["62"]) == {"01": "INV-0001"}


@pytest.mark.parametrize(
    "payload",
    ["00", "0002", "000201x", "0002010103", "ab0201", "00xx01", "000001", "000201000201"],
)
def test_parse_tlv_rejects_malformed_input(payload):
    with pytest.raises(InvalidQris):
        parse_tlv(payload)


@given(
    st.dictionaries(
        st.integers(0, 99).map(lambda n: f"{n:02d}"),
        st.text(st.characters(min_codepoint=32, max_codepoint=126), min_size=1, max_size=99),
        max_size=10,
    )
)
def test_tlv_and_parse_tlv_round_trip(fields):
    payload = "".join(tlv(tag, value) for tag, value in fields.items())
    assert parse_tlv(payload) == fields


def test_round_trip_through_parse():
    data = parse_qris(build_dynamic_qris(**GOLDEN_ARGS))
    assert data.point_of_initiation == "dynamic"
    assert data.amount_idr == 50_000
    assert data.nmid == "ID1020021319208"
    assert data.merchant_pan == "9360001430000012345"
    assert data.merchant_criteria == "UMI"
    assert data.mcc == "9399"
    assert (data.currency, data.country) == ("360", "ID")
    assert (data.merchant_name, data.merchant_city) == ("Dukcapil Kota Bekasi", "Bekasi")
    assert data.postal_code == "17141"
    assert data.bill_number == "INV-0001"
    assert data.crc == GOLDEN_CRC


@given(
    amount=st.integers(1, 10**13 - 1),
    bill=st.text(st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=25),
    name=st.text(min_size=1, max_size=60).filter(
        lambda s: any(c.isalnum() and c.isascii() for c in s)
    ),
)
def test_round_trip_any_amount_bill_and_name(amount, bill, name):
    payload = build_dynamic_qris(**{**GOLDEN_ARGS, "amount_idr": amount, "bill_number": bill,
                                    "merchant_name": name})  # fmt: skip
    data = parse_qris(payload)
    assert data.amount_idr == amount
    assert data.bill_number == bill
    assert 1 <= len(data.merchant_name) <= 25


def test_without_postal_code_tag_61_is_absent():
    data = parse_qris(build_dynamic_qris(**{**GOLDEN_ARGS, "postal_code": None}))
    assert data.postal_code is None
    assert "61" not in data.fields


def test_name_and_city_are_truncated_and_folded_to_ascii():
    payload = build_dynamic_qris(
        **{
            **GOLDEN_ARGS,
            "merchant_name": "Dinas Penanaman Modal dan PTSP Provinsi Jawa Barat",
            "merchant_city": "Kabupaten Bandung Barat",
        }
    )
    data = parse_qris(payload)
    assert data.merchant_name == "Dinas Penanaman Modal dan"
    assert data.merchant_city == "Kabupaten Bandu"
    folded = parse_qris(build_dynamic_qris(**{**GOLDEN_ARGS, "merchant_name": "Kafé Pelayanan"}))
    assert folded.merchant_name == "Kafe Pelayanan"


def test_custom_acquirer_values_go_into_tag_26_only():
    payload = build_dynamic_qris(
        **GOLDEN_ARGS,
        merchant_id="MID000123",
        acquirer_gui="ID.CO.BANK.WWW",
        merchant_criteria="UBE",
    )
    data = parse_qris(payload)
    assert data.merchant_account["00"] == "ID.CO.BANK.WWW"
    assert data.merchant_account["02"] == "MID000123"
    assert parse_tlv(data.fields["51"]) == {
        "00": "ID.CO.QRIS.WWW",
        "02": "ID1020021319208",
        "03": "UBE",
    }


@pytest.mark.parametrize("amount", [0, -1, 10**13, True, 1000.0])
def test_build_refuses_non_positive_or_non_integer_amounts(amount):
    with pytest.raises(InvalidAmount):
        build_dynamic_qris(**{**GOLDEN_ARGS, "amount_idr": amount})


@pytest.mark.parametrize(
    "override",
    [
        {"merchant_pan": "12345"},
        {"merchant_pan": "936000143000001234X"},
        {"nmid": "1020021319208"},
        {"mcc": "93"},
        {"merchant_criteria": "umi"},
        {"bill_number": "B" * 26},
        {"postal_code": "17-141"},
        {"merchant_name": "关"},
        {"merchant_city": "   "},
    ],
)
def test_build_refuses_bad_merchant_data(override):
    with pytest.raises(ValueError):
        build_dynamic_qris(**{**GOLDEN_ARGS, **override})


def test_lowercase_crc_is_accepted():
    assert parse_qris(GOLDEN[:-4] + GOLDEN_CRC.lower()).amount_idr == 50_000


@pytest.mark.parametrize(
    "tampered",
    [
        GOLDEN.replace("540550000", "540510000"),  # cheaper amount
        GOLDEN.replace("INV-0001", "INV-0002"),  # other bill
        GOLDEN.replace("ID1020021319208", "ID1020021319209"),  # other merchant
        GOLDEN[:-4] + "0000",  # CRC replaced
        GOLDEN[:-1],  # truncated
        GOLDEN + "00",  # trailing data
        GOLDEN.replace("6304", "6305"),
    ],
)
def test_tampered_payload_is_rejected(tampered):
    with pytest.raises(InvalidQris):
        parse_qris(tampered)


def test_every_single_character_change_is_detected():
    for index in range(len(GOLDEN) - 4):
        replacement = "0" if GOLDEN[index] != "0" else "1"
        with pytest.raises(InvalidQris):
            parse_qris(GOLDEN[:index] + replacement + GOLDEN[index + 1 :])


def _golden_without(tag: str, replacement: str = "") -> str:
    fields = parse_tlv(GOLDEN)
    body = "".join((replacement if tag == t else tlv(t, v)) for t, v in fields.items() if t != "63")
    return _with_crc(body + "6304")


@pytest.mark.parametrize(
    ("tag", "replacement", "reason"),
    [
        ("00", "000202", "format indicator"),
        ("01", "", "point of initiation"),
        ("01", "010213", "point of initiation"),
        ("53", "5303840", "currency"),
        ("58", "5802SG", "country"),
        ("51", "", "national"),
        ("51", "51180014ID.CO.QRIS.WWW", "NMID"),
        ("51", "51190015ID.CO.OTHER.WWW", "repository"),
        ("59", "", "merchant name"),
        ("60", "", "merchant city"),
        ("52", "", "merchant category"),
        ("54", "", "amount"),
        ("54", "540750000.5", "amount"),
        ("54", "540850000.50", "fraction"),
        ("54", "54010", "positive"),
        ("54", "54031e3", "amount"),
    ],
)
def test_structurally_invalid_payload_with_valid_crc_is_rejected(tag, replacement, reason):
    with pytest.raises(InvalidQris, match=reason):
        parse_qris(_golden_without(tag, replacement))


def test_amount_with_zero_cents_is_accepted():
    assert parse_qris(_golden_without("54", "540850000.00")).amount_idr == 50_000


def test_static_qris_without_amount_parses():
    payload = _golden_without("01", "010211").replace("540550000", "")
    data = parse_qris(_with_crc(payload[:-4]))
    assert data.point_of_initiation == "static"
    assert data.amount_idr is None


@pytest.mark.parametrize("payload", ["", "6304", "ABC", b"000201", None, "Rp" + GOLDEN + "é"])
def test_garbage_is_rejected(payload):
    with pytest.raises(InvalidQris):
        parse_qris(payload)


def test_crc_field_must_be_last():
    body = "".join(GOLDEN_FIELDS)[:-4]
    # "6304" and a correct CRC at the end, but hidden inside the value of tag 99
    disguised = body + "9910xx6304"
    payload = disguised + f"{crc16_ccitt_false(disguised.encode()):04X}"
    with pytest.raises(InvalidQris, match="not the last field"):
        parse_qris(payload)


def test_png_has_png_signature():
    image = qr_png(GOLDEN)
    assert image.startswith(b"\x89PNG\r\n\x1a\n")
    assert len(image) > 100


def test_svg_is_xml_svg_document():
    svg = qr_svg(GOLDEN)
    assert svg.startswith("<?xml")
    root = ET.fromstring(svg.encode("utf-8"))
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
