import pytest

from mpp_queue.domain.announce import (
    LETTER_NAMES,
    announcement,
    counter_label,
    spoken_announcement,
    terbilang,
)


@pytest.mark.parametrize(
    "counter_name, expected",
    [
        ("3", "Nomor antrean A-012, silakan menuju loket 3"),
        ("Loket 3", "Nomor antrean A-012, silakan menuju loket 3"),
        ("loket 3", "Nomor antrean A-012, silakan menuju loket 3"),
        ("LOKET 3", "Nomor antrean A-012, silakan menuju loket 3"),
        ("  Loket   3 ", "Nomor antrean A-012, silakan menuju loket 3"),
        ("Loket3", "Nomor antrean A-012, silakan menuju loket 3"),
        ("Loket B", "Nomor antrean A-012, silakan menuju loket B"),
        ("Imigrasi 2", "Nomor antrean A-012, silakan menuju loket Imigrasi 2"),
    ],
)
def test_announcement(counter_name, expected):
    assert announcement("A-012", counter_name) == expected


@pytest.mark.parametrize("name", ["", "   "])
def test_empty_counter_name_is_refused(name):
    with pytest.raises(ValueError):
        counter_label(name)


def test_never_says_loket_twice():
    for name in ["Loket 1", "loket 1", "LOKET-1", "Loket: 1", "1"]:
        assert announcement("B-001", name).lower().count("loket") == 1


@pytest.mark.parametrize(
    "n, words",
    [
        (0, "nol"),
        (1, "satu"),
        (10, "sepuluh"),
        (11, "sebelas"),
        (12, "dua belas"),
        (19, "sembilan belas"),
        (20, "dua puluh"),
        (21, "dua puluh satu"),
        (99, "sembilan puluh sembilan"),
        (100, "seratus"),
        (101, "seratus satu"),
        (111, "seratus sebelas"),
        (200, "dua ratus"),
        (999, "sembilan ratus sembilan puluh sembilan"),
        (1000, "seribu"),
        (1001, "seribu satu"),
        (1234, "seribu dua ratus tiga puluh empat"),
        (2000, "dua ribu"),
        (12345, "dua belas ribu tiga ratus empat puluh lima"),
        (100000, "seratus ribu"),
    ],
)
def test_terbilang(n, words):
    assert terbilang(n) == words


@pytest.mark.parametrize("n", [-1, 1_000_000])
def test_terbilang_range(n):
    with pytest.raises(ValueError):
        terbilang(n)


def test_spoken_announcement():
    assert (
        spoken_announcement("A-012", "Loket 3")
        == "Nomor antrean a, dua belas, silakan menuju loket tiga"
    )
    assert (
        spoken_announcement("KB-1234", "12")
        == "Nomor antrean ka be, seribu dua ratus tiga puluh empat, silakan menuju loket dua belas"
    )


def test_every_letter_has_a_spoken_name():
    assert sorted(LETTER_NAMES) == [chr(c) for c in range(ord("A"), ord("Z") + 1)]


@pytest.mark.parametrize("number", ["A012", "a-012", "ABCD-1", "A-", "-12"])
def test_spoken_announcement_needs_a_ticket_number(number):
    with pytest.raises(ValueError):
        spoken_announcement(number, "1")
