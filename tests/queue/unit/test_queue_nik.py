import hashlib
import hmac
from datetime import date, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mpp_queue.domain.nik import InvalidNik, NikInfo, mask_nik, nik_hash, validate_nik

TODAY = date(2026, 5, 9)


def make_nik(birth: date, sex: str = "M", region: str = "320101", serial: str = "0001") -> str:
    day = birth.day + (40 if sex == "F" else 0)
    return f"{region}{day:02d}{birth.month:02d}{birth.year % 100:02d}{serial}"


def test_valid_male_nik():
    info = validate_nik("3201011508900001", today=TODAY)
    assert info == NikInfo(
        birth_date=date(1990, 8, 15), sex="M", region_code="320101", last4="0001"
    )


def test_women_have_forty_added_to_the_day():
    info = validate_nik("3201015508900002", today=TODAY)
    assert info.sex == "F"
    assert info.birth_date == date(1990, 8, 15)


@pytest.mark.parametrize(
    "day_field, sex, day",
    [("01", "M", 1), ("31", "M", 31), ("41", "F", 1), ("71", "F", 31)],
)
def test_day_field_edges(day_field, sex, day):
    info = validate_nik(f"320101{day_field}0190" + "0001", today=TODAY)
    assert (info.sex, info.birth_date) == (sex, date(1990, 1, day))


@pytest.mark.parametrize(
    "birth_field, today, expected",
    [
        ("090526", date(2026, 5, 9), date(2026, 5, 9)),  # born today: this century
        ("100526", date(2026, 5, 9), date(1926, 5, 10)),  # tomorrow in 2026 -> 1926
        ("010100", date(2026, 5, 9), date(2000, 1, 1)),
        ("311299", date(2026, 5, 9), date(1999, 12, 31)),
        ("010127", date(2026, 5, 9), date(1927, 1, 1)),
        ("290200", date(2026, 5, 9), date(2000, 2, 29)),  # 2000 is a leap year
        ("010126", date(2025, 12, 31), date(1926, 1, 1)),
    ],
)
def test_two_digit_year_resolves_to_most_recent_past_century(birth_field, today, expected):
    assert validate_nik(f"320101{birth_field}0001", today=today).birth_date == expected


def test_today_defaults_to_the_real_date():
    assert validate_nik("3201011508900001").birth_date == date(1990, 8, 15)


@pytest.mark.parametrize(
    "nik, reason",
    [
        ("", "length"),
        ("320101150890000", "length"),
        ("32010115089000011", "length"),
        (" 3201011508900001", "length"),
        ("320101150890000A", "digits"),
        ("3201-11508900001", "digits"),
        ("32010115089000\u0661\u0662", "digits"),  # Arabic-Indic digits are str.isdigit()
        ("0001011508900001", "region"),  # province 00
        ("2001011508900001", "region"),  # 20 is not a province
        ("9901011508900001", "region"),
        ("3200011508900001", "region"),  # regency 00
        ("3201001508900001", "region"),  # district 00
        ("3201010008900001", "birth_date"),  # day 0
        ("3201013208900001", "birth_date"),  # day 32
        ("3201014008900001", "birth_date"),  # day 40 = female day 0
        ("3201017208900001", "birth_date"),  # day 72 = female day 32
        ("3201011500900001", "birth_date"),  # month 0
        ("3201011513900001", "birth_date"),  # month 13
        ("3201013102900001", "birth_date"),  # 31 February
        ("3201012902010001", "birth_date"),  # 29 Feb 2001 / 1901: neither is a leap year
    ],
)
def test_invalid_niks_give_a_reason_and_never_echo_the_number(nik, reason):
    with pytest.raises(InvalidNik) as caught:
        validate_nik(nik, today=TODAY)
    assert caught.value.reason == reason
    assert isinstance(caught.value, ValueError)
    if nik:
        assert nik not in str(caught.value)
        assert nik not in repr(caught.value)
        assert nik[6:] not in str(caught.value)


@given(
    birth=st.dates(min_value=TODAY - timedelta(days=36524), max_value=TODAY),
    sex=st.sampled_from(["F", "M"]),
    serial=st.from_regex(r"[0-9]{4}", fullmatch=True),
)
def test_round_trip_for_any_birth_date_in_the_last_century(birth, sex, serial):
    info = validate_nik(make_nik(birth, sex, serial=serial), today=TODAY)
    assert (info.birth_date, info.sex, info.last4) == (birth, sex, serial)


def test_nik_hash_is_hmac_sha256_and_keyed():
    nik = "3201011508900001"
    expected = hmac.new(b"secret", nik.encode(), hashlib.sha256).hexdigest()
    assert nik_hash(nik, "secret") == expected
    assert nik_hash(nik, "other") != expected
    assert nik_hash(nik, "secret") != hashlib.sha256(nik.encode()).hexdigest()
    assert nik_hash("3201011508900002", "secret") != expected
    assert len(expected) == 64


def test_nik_hash_refuses_an_empty_key():
    with pytest.raises(ValueError) as caught:
        nik_hash("3201011508900001", "")
    assert "3201011508900001" not in str(caught.value)


def test_mask_nik():
    assert mask_nik("1234") == "************1234"
    assert len(mask_nik("0001")) == 16


@pytest.mark.parametrize("bad", ["123", "12345", "12a4", "3201011508900001", ""])
def test_mask_nik_takes_only_four_digits_and_does_not_echo(bad):
    with pytest.raises(ValueError) as caught:
        mask_nik(bad)
    if bad:
        assert bad not in str(caught.value)


def test_nik_info_does_not_carry_the_full_number():
    info = validate_nik("3201011508900001", today=TODAY)
    assert "3201011508900001" not in repr(info)
