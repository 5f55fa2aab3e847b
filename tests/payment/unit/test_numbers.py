from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mpp_payment.domain.numbers import (
    DEFAULT_EXPIRY_MINUTES,
    ewallet_reference,
    expires_at,
    luhn_check_digit,
    receipt_number,
    virtual_account_number,
)


def _luhn_valid(number: str) -> bool:
    return luhn_check_digit(number[:-1]) == number[-1]


@pytest.mark.parametrize(("digits", "check"), [("7992739871", "3"), ("0", "0"), ("4", "2")])
def test_luhn_known_values(digits, check):
    assert luhn_check_digit(digits) == check


def test_va_from_sequence_is_prefix_padded_sequence_and_check_digit():
    number = virtual_account_number("88810", 123)
    assert number == "88810" + "0000000123" + luhn_check_digit("888100000000123")
    assert len(number) == 16


def test_va_is_deterministic_and_digits_only_for_ids():
    first = virtual_account_number("88810", "0b9c6e5e-6a0b-4f5e-9d55-6a1b1f7a8c01")
    assert first == virtual_account_number("88810", "0b9c6e5e-6a0b-4f5e-9d55-6a1b1f7a8c01")
    assert first.isdigit() and len(first) == 16 and first.startswith("88810")
    assert first != virtual_account_number("88810", "0b9c6e5e-6a0b-4f5e-9d55-6a1b1f7a8c02")


@given(
    prefix=st.text("0123456789", min_size=1, max_size=8),
    key=st.one_of(st.integers(1, 10**7 - 1), st.text(min_size=1)),
)
def test_va_shape(prefix, key):
    number = virtual_account_number(prefix, key)
    assert len(number) == 16 and number.isdigit()
    assert number.startswith(prefix)
    assert _luhn_valid(number)


def test_va_single_digit_typo_is_detected_by_check_digit():
    number = virtual_account_number("88810", 42)
    for index in range(len(number)):
        for digit in "0123456789":
            if digit != number[index]:
                assert not _luhn_valid(number[:index] + digit + number[index + 1 :])


def test_va_custom_length():
    assert len(virtual_account_number("123", 5, length=12)) == 12


@pytest.mark.parametrize(
    ("prefix", "key"),
    [
        ("88a10", 1),
        ("", 1),
        ("1" * 15, 1),
        ("88810", 0),
        ("88810", -1),
        ("88810", 10**10),
        ("88810", ""),
    ],
)
def test_va_refuses_bad_input(prefix, key):
    with pytest.raises(ValueError):
        virtual_account_number(prefix, key)


def test_va_refuses_bool():
    with pytest.raises(TypeError):
        virtual_account_number("88810", True)


def test_ewallet_reference():
    assert ewallet_reference("0b9c6e5e-6a0b-4f5e-9d55-6a1b1f7a8c01") == (
        "MPP-0b9c6e5e-6a0b-4f5e-9d55-6a1b1f7a8c01-1"
    )
    assert ewallet_reference("p-1", 2) == "MPP-p-1-2"
    assert ewallet_reference("p-1", 3, prefix="SIM") == "SIM-p-1-3"
    assert ewallet_reference("p-1", 1) == ewallet_reference("p-1", 1)
    assert ewallet_reference("p-1", 1) != ewallet_reference("p-1", 2)


@pytest.mark.parametrize(
    ("payment_id", "attempt"),
    [("", 1), ("p 1", 1), ("p/1", 1), ("p", 0), ("p", True), ("x" * 60, 1)],
)
def test_ewallet_reference_refuses_what_providers_refuse(payment_id, attempt):
    with pytest.raises(ValueError):
        ewallet_reference(payment_id, attempt)


@pytest.mark.parametrize(
    ("mall", "day", "seq", "expected"),
    [
        ("MPP", date(2026, 11, 28), 123, "MPP-20261128-000123"),
        ("mppbks", date(2026, 1, 2), 1, "MPPBKS-20260102-000001"),
        ("MPP", date(2026, 12, 31), 999_999, "MPP-20261231-999999"),
    ],
)
def test_receipt_number(mall, day, seq, expected):
    assert receipt_number(mall, day, seq) == expected


@pytest.mark.parametrize(
    ("mall", "seq"), [("MPP", 0), ("MPP", 1_000_000), ("M", 1), ("MP-P", 1), ("MPP", True)]
)
def test_receipt_number_refuses_bad_input(mall, seq):
    with pytest.raises(ValueError):
        receipt_number(mall, date(2026, 11, 28), seq)


WIB = timezone(timedelta(hours=7))


@pytest.mark.parametrize(
    ("method", "minutes"), [("qris", 30), ("ewallet", 15), ("virtual_account", 1440)]
)
def test_expires_at_with_defaults(method, minutes):
    created = datetime(2026, 11, 28, 23, 50, tzinfo=WIB)
    assert DEFAULT_EXPIRY_MINUTES[method] == minutes
    assert expires_at(created, method) == created + timedelta(minutes=minutes)


def test_expires_at_with_settings_and_across_midnight():
    created = datetime(2026, 11, 28, 23, 50, tzinfo=UTC)
    assert expires_at(created, "qris", {"qris": 30}) == datetime(2026, 11, 29, 0, 20, tzinfo=UTC)


@pytest.mark.parametrize(
    ("created", "method", "settings"),
    [
        (datetime(2026, 11, 28, 10, 0), "qris", {"qris": 15}),
        (datetime(2026, 11, 28, 10, 0, tzinfo=UTC), "cash", {"qris": 15}),
        (datetime(2026, 11, 28, 10, 0, tzinfo=UTC), "qris", {"qris": 0}),
        (datetime(2026, 11, 28, 10, 0, tzinfo=UTC), "qris", {"qris": 1.5}),
    ],
)
def test_expires_at_refuses_bad_input(created, method, settings):
    with pytest.raises(ValueError):
        expires_at(created, method, settings)
