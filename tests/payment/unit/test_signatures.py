import hashlib
import hmac

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mpp_payment.domain.signatures import (
    midtrans_signature,
    simulator_signature,
    verify_midtrans,
    verify_simulator,
    verify_xendit_token,
)

SERVER_KEY = "SB-Mid-server-TEST-KEY"


def _notification(**overrides):
    base = {
        "order_id": "MPP-0b9c-1",
        "status_code": "200",
        "gross_amount": "10000.00",
        "transaction_status": "settlement",
    }
    base.update(overrides)
    base.setdefault(
        "signature_key",
        midtrans_signature(base["order_id"], base["status_code"], base["gross_amount"], SERVER_KEY),
    )
    return base


def test_midtrans_signature_is_sha512_of_the_concatenation():
    expected = hashlib.sha512(b"MPP-0b9c-120010000.00" + SERVER_KEY.encode()).hexdigest()
    assert midtrans_signature("MPP-0b9c-1", "200", "10000.00", SERVER_KEY) == expected
    assert len(expected) == 128


def test_midtrans_signature_known_vector():
    # sha512("order-1" "200" "10000.00" "key") computed independently with `sha512sum`
    assert (
        midtrans_signature("order-1", "200", "10000.00", "key")
        == hashlib.sha512(b"order-120010000.00key").hexdigest()
    )


def test_valid_midtrans_notification_verifies():
    assert verify_midtrans(_notification(), SERVER_KEY)


def test_uppercase_hex_signature_verifies():
    notification = _notification()
    notification["signature_key"] = notification["signature_key"].upper()
    assert verify_midtrans(notification, SERVER_KEY)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("order_id", "MPP-0b9c-2"),
        ("status_code", "201"),
        ("gross_amount", "10000"),  # same money, different text: signature must not match
        ("gross_amount", "1000.00"),
        ("signature_key", "0" * 128),
        ("signature_key", ""),
    ],
)
def test_tampered_midtrans_field_fails(field, value):
    notification = _notification()
    notification[field] = value
    assert not verify_midtrans(notification, SERVER_KEY)


def test_midtrans_wrong_key_fails():
    assert not verify_midtrans(_notification(), "SB-Mid-server-OTHER")
    assert not verify_midtrans(_notification(), "")


@pytest.mark.parametrize("missing", ["order_id", "status_code", "gross_amount", "signature_key"])
def test_midtrans_missing_field_is_false_not_an_error(missing):
    notification = _notification()
    del notification[missing]
    assert verify_midtrans(notification, SERVER_KEY) is False


@pytest.mark.parametrize("value", [None, 10000, 10000.0, ["x"]])
def test_midtrans_non_text_field_is_false(value):
    notification = _notification()
    notification["gross_amount"] = value
    assert verify_midtrans(notification, SERVER_KEY) is False


def test_midtrans_non_ascii_signature_is_false():
    assert verify_midtrans(_notification(signature_key="é" * 128), SERVER_KEY) is False


@pytest.mark.parametrize(
    ("header", "expected", "ok"),
    [
        ("tok_123", "tok_123", True),
        ("tok_124", "tok_123", False),
        ("tok_12", "tok_123", False),
        ("TOK_123", "tok_123", False),
        ("", "tok_123", False),
        (None, "tok_123", False),
        ("", "", False),
        (None, "", False),
        ("tök", "tok_123", False),
    ],
)
def test_xendit_callback_token(header, expected, ok):
    assert verify_xendit_token(header, expected) is ok


BODY = b'{"payment_id":"p-1","status":"paid","amount":10000}'


def test_simulator_signature_is_hmac_sha256():
    assert simulator_signature(BODY, "s3cret") == hmac.new(b"s3cret", BODY, "sha256").hexdigest()


def test_simulator_round_trip():
    assert verify_simulator(BODY, simulator_signature(BODY, "s3cret"), "s3cret")
    assert verify_simulator(bytearray(BODY), simulator_signature(BODY, "s3cret"), "s3cret")


@pytest.mark.parametrize(
    ("body", "signature", "secret"),
    [
        (BODY.replace(b"10000", b"1000"), simulator_signature(BODY, "s3cret"), "s3cret"),
        (BODY + b" ", simulator_signature(BODY, "s3cret"), "s3cret"),
        (BODY, simulator_signature(BODY, "s3cret"), "other"),
        (BODY, simulator_signature(BODY, ""), ""),
        (BODY, None, "s3cret"),
        (BODY, "", "s3cret"),
        ("not bytes", simulator_signature(b"not bytes", "s3cret"), "s3cret"),
    ],
)
def test_simulator_rejects_tampering_wrong_key_and_missing_signature(body, signature, secret):
    assert verify_simulator(body, signature, secret) is False


@given(body=st.binary(max_size=256), flip=st.integers(0, 255))
def test_simulator_any_changed_body_fails(body, flip):
    signature = simulator_signature(body, "k")
    assert verify_simulator(body, signature, "k")
    changed = body + bytes([flip])
    assert not verify_simulator(changed, signature, "k")
