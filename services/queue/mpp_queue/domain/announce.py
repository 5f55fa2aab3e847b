"""Call announcements in Bahasa Indonesia, for the display board and for text-to-speech.

The board shows ``Nomor antrean A-012, silakan menuju loket 3``. Counters are named either by a bare
label (``3``) or in full (``Loket 3``); both must read "loket 3", never "loket Loket 3". Speech
engines read ``A-012`` badly ("A minus dua belas"), so a spelled-out variant reads the letters by
their Indonesian names and the numbers in words: "Nomor antrean a, dua belas, silakan menuju loket
tiga".
"""

from __future__ import annotations

import re

_LOKET = re.compile(r"loket[\s.:-]*", re.IGNORECASE)
_NUMBER = re.compile(r"([A-Z]{1,3})-(\d+)")
_DIGITS = re.compile(r"\d+")

_UNITS = (
    "nol",
    "satu",
    "dua",
    "tiga",
    "empat",
    "lima",
    "enam",
    "tujuh",
    "delapan",
    "sembilan",
    "sepuluh",
    "sebelas",
)

LETTER_NAMES = {
    "A": "a",
    "B": "be",
    "C": "ce",
    "D": "de",
    "E": "e",
    "F": "ef",
    "G": "ge",
    "H": "ha",
    "I": "i",
    "J": "je",
    "K": "ka",
    "L": "el",
    "M": "em",
    "N": "en",
    "O": "o",
    "P": "pe",
    "Q": "ki",
    "R": "er",
    "S": "es",
    "T": "te",
    "U": "u",
    "V": "fe",
    "W": "we",
    "X": "eks",
    "Y": "ye",
    "Z": "zet",
}
"""How Indonesian speakers name the letters (the alphabet as taught in school)."""


def counter_label(counter_name: str) -> str:
    """``'3'`` and ``'Loket 3'`` both become ``'loket 3'``."""
    name = counter_name.strip()
    if not name:
        raise ValueError("counter_name must not be empty")
    match = _LOKET.match(name)
    rest = name[match.end() :] if match else name
    return f"loket {rest}" if rest else "loket"


def announcement(number: str, counter_name: str) -> str:
    """The text shown on the board and sent in the ``ticket_called`` event."""
    return f"Nomor antrean {number}, silakan menuju {counter_label(counter_name)}"


def terbilang(n: int) -> str:
    """A non-negative integer in Indonesian words (``112 -> 'seratus dua belas'``)."""
    if n < 0:
        raise ValueError("n must not be negative")
    if n < 12:
        return _UNITS[n]
    if n < 20:
        return f"{_UNITS[n - 10]} belas"
    if n < 100:
        return _join(f"{_UNITS[n // 10]} puluh", n % 10)
    if n < 200:
        return _join("seratus", n - 100)
    if n < 1000:
        return _join(f"{_UNITS[n // 100]} ratus", n % 100)
    if n < 2000:
        return _join("seribu", n - 1000)
    if n < 1_000_000:
        return _join(f"{terbilang(n // 1000)} ribu", n % 1000)
    raise ValueError("numbers from one million up are not spoken in queue announcements")


def _join(head: str, rest: int) -> str:
    return f"{head} {terbilang(rest)}" if rest else head


def spoken_announcement(number: str, counter_name: str) -> str:
    """The announcement with letters named and numbers in words, for a text-to-speech engine."""
    match = _NUMBER.fullmatch(number)
    if not match:
        raise ValueError("number must look like 'A-012'")
    letters = " ".join(LETTER_NAMES[c] for c in match.group(1))
    label = _DIGITS.sub(lambda m: terbilang(int(m.group())), counter_label(counter_name))
    return f"Nomor antrean {letters}, {terbilang(int(match.group(2)))}, silakan menuju {label}"
