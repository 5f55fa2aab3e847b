"""Satisfaction index (IKM) arithmetic of PermenPANRB 14/2017, kept exact.

The index is published per agency and compared with fixed grade boundaries (88.31, 76.61, 65.00), so
floating point is not acceptable: 77.775 must not become 77.77499999. Every intermediate value is a
``Fraction``; a value is rounded (half up) exactly once, when it is reported. See
``docs/decisions/0004-ikm-weight.md`` for the weight and ``docs/rating-rules.md`` for the rules.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction
from typing import Literal

ELEMENTS: tuple[str, ...] = ("U1", "U2", "U3", "U4", "U5", "U6", "U7", "U8", "U9")

ELEMENT_NAMES: Mapping[str, str] = {
    "U1": "Persyaratan",
    "U2": "Sistem, Mekanisme, dan Prosedur",
    "U3": "Waktu Penyelesaian",
    "U4": "Biaya/Tarif",
    "U5": "Produk Spesifikasi Jenis Pelayanan",
    "U6": "Kompetensi Pelaksana",
    "U7": "Perilaku Pelaksana",
    "U8": "Penanganan Pengaduan, Saran dan Masukan",
    "U9": "Sarana dan Prasarana",
}

ANSWER_MIN = 1
ANSWER_MAX = 4

Weight = Literal["exact", "regulation"]

#: 'exact' is 1/9, what the regulation defines (sum of weights / number of elements);
#: 'regulation' is the 0.111 the regulation prints. The default is 'exact' (ADR 0004).
WEIGHTS: Mapping[str, Fraction] = {"exact": Fraction(1, 9), "regulation": Fraction(111, 1000)}

#: Scale factor from the 1–4 index to the 25–100 published figure.
CONVERSION_FACTOR = 25

#: Raw (1–4 scale) values are reported to 4 decimals: 25 × 0.00005 < 0.005, so a reader who
#: multiplies a reported raw value by 25 lands within one cent of the reported converted value.
RAW_PLACES = 4
CONVERTED_PLACES = 2

#: Lower bounds of the converted grades, highest first. Anything below 65.00 is D, including the
#: 24.98 that the 0.111 weight yields when every answer is 1.
GRADES: tuple[tuple[Decimal, str, str], ...] = (
    (Decimal("88.31"), "A", "Sangat Baik"),
    (Decimal("76.61"), "B", "Baik"),
    (Decimal("65.00"), "C", "Kurang Baik"),
    (Decimal("0"), "D", "Tidak Baik"),
)

# Krejcie & Morgan (1970): chi-square (1 degree of freedom, 95 %), population proportion, margin.
KM_CHI_SQUARE = Fraction("3.841")
KM_PROPORTION = Fraction(1, 2)
KM_MARGIN = Fraction(5, 100)
#: The published table ends at 384 (for 100,000 and beyond) although the formula gives 383 at
#: 100,000 and 385 from 1,471,105; the table is what auditors check, so it wins from 100,000 on.
KM_TABLE_CAP_POPULATION = 100_000
KM_TABLE_CAP_SAMPLE = 384


@dataclass(frozen=True)
class ElementResult:
    """One element (unsur) of the survey; values are ``None`` when nobody answered it."""

    code: str
    name: str
    answer_sum: int
    answer_count: int
    nrr: Decimal | None
    weighted_nrr: Decimal | None
    converted: Decimal | None
    grade: str | None
    grade_label: str | None


@dataclass(frozen=True)
class IkmResult:
    """The index of one population of ratings, with every step a reader needs to check it by hand.

    ``ikm`` and ``converted`` are ``None`` when any element has no answers (``missing_elements``):
    the regulation's index is an average over all nine elements, and averaging over fewer would
    publish a different index under the same name. ``exact`` keeps the unrounded 1–4 value for
    callers that must compare or aggregate further without double rounding.
    """

    weight: Weight
    weight_value: Fraction
    elements: tuple[ElementResult, ...]
    missing_elements: tuple[str, ...]
    exact: Fraction | None
    ikm: Decimal | None
    converted: Decimal | None
    grade: str | None
    grade_label: str | None

    def element(self, code: str) -> ElementResult:
        """Look an element up by its code (``'U1'``…``'U9'``)."""
        for element in self.elements:
            if element.code == code:
                return element
        raise KeyError(code)


def round_half_up(value: Fraction | Decimal | int, places: int) -> Decimal:
    """Round to ``places`` decimals, ties away from zero, as people and spreadsheets do by hand.

    Python's ``round`` rounds ties to even and floats cannot hold 76.605 at all; the grade table is
    read by humans who round half up, so that is the rule everywhere in the rating domain.
    """
    if isinstance(value, Decimal):
        return value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)
    exact = Fraction(value)
    scaled = abs(exact) * 10**places
    units = math.floor(scaled + Fraction(1, 2))
    sign = "-" if exact < 0 and units else ""
    return Decimal(f"{sign}{units}").scaleb(-places).quantize(Decimal(1).scaleb(-places))


def grade(converted: Decimal | Fraction | int) -> tuple[str, str]:
    """Grade letter and label of a converted (25–100) value, rounding half up to 2 decimals first.

    The regulation's intervals leave gaps (64.99 | 65.00, 76.60 | 76.61, 88.30 | 88.31) that only
    make sense for values with two decimals, so 76.605 is first rounded to 76.61 (B).
    """
    rounded = round_half_up(converted, CONVERTED_PLACES)
    if rounded < 0 or rounded > 100:
        raise ValueError(f"converted IKM must lie within 0–100, got {converted}")
    for lower, letter, label in GRADES:
        if rounded >= lower:
            return letter, label
    raise AssertionError("unreachable: the last grade starts at 0")


def compute_ikm(
    element_sums: Mapping[str, int],
    element_counts: Mapping[str, int],
    *,
    weight: Weight = "exact",
) -> IkmResult:
    """IKM from per-element answer sums and counts (the shape an incremental aggregate keeps).

    NRR per element is sum / count of that element's answers, so a respondent who skipped an element
    does not pull its average down. Keys absent from the mappings count as zero answers.
    """
    if weight not in WEIGHTS:
        raise ValueError(f"weight must be one of {sorted(WEIGHTS)}, got {weight!r}")
    unknown = (set(element_sums) | set(element_counts)) - set(ELEMENTS)
    if unknown:
        raise ValueError(f"unknown survey elements: {sorted(unknown)}")
    weight_value = WEIGHTS[weight]

    elements: list[ElementResult] = []
    missing: list[str] = []
    total = Fraction(0)
    for code in ELEMENTS:
        answer_sum = element_sums.get(code, 0)
        answer_count = element_counts.get(code, 0)
        _check_element(code, answer_sum, answer_count)
        if answer_count == 0:
            missing.append(code)
            elements.append(
                ElementResult(code, ELEMENT_NAMES[code], 0, 0, None, None, None, None, None)
            )
            continue
        nrr = Fraction(answer_sum, answer_count)
        weighted = nrr * weight_value
        total += weighted
        letter, label = grade(nrr * CONVERSION_FACTOR)
        elements.append(
            ElementResult(
                code=code,
                name=ELEMENT_NAMES[code],
                answer_sum=answer_sum,
                answer_count=answer_count,
                nrr=round_half_up(nrr, RAW_PLACES),
                weighted_nrr=round_half_up(weighted, RAW_PLACES),
                converted=round_half_up(nrr * CONVERSION_FACTOR, CONVERTED_PLACES),
                grade=letter,
                grade_label=label,
            )
        )

    if missing:
        return IkmResult(
            weight, weight_value, tuple(elements), tuple(missing), None, None, None, None, None
        )
    converted = total * CONVERSION_FACTOR
    letter, label = grade(converted)
    return IkmResult(
        weight=weight,
        weight_value=weight_value,
        elements=tuple(elements),
        missing_elements=(),
        exact=total,
        ikm=round_half_up(total, RAW_PLACES),
        converted=round_half_up(converted, CONVERTED_PLACES),
        grade=letter,
        grade_label=label,
    )


def _check_element(code: str, answer_sum: int, answer_count: int) -> None:
    """Sums and counts come from our own aggregates; an impossible pair means corrupted data."""
    if answer_count < 0:
        raise ValueError(f"{code}: negative answer count {answer_count}")
    if not ANSWER_MIN * answer_count <= answer_sum <= ANSWER_MAX * answer_count:
        raise ValueError(
            f"{code}: sum {answer_sum} impossible for {answer_count} answers of "
            f"{ANSWER_MIN}–{ANSWER_MAX}"
        )


def krejcie_morgan(population: int) -> int:
    """Minimum respondents for a representative survey of ``population`` service users.

    ceil(χ²·N·P(1−P) / (d²(N−1) + χ²·P(1−P))) with χ² = 3.841, P = 0.5, d = 0.05, computed exactly,
    which reproduces the published table (100 → 80, 1,000 → 278, 10,000 → 370). From 100,000 the
    table's 384 is returned (the formula gives 383 at 100,000): the regulation cites the table.
    """
    if population < 0:
        raise ValueError(f"population must not be negative, got {population}")
    if population >= KM_TABLE_CAP_POPULATION:
        return KM_TABLE_CAP_SAMPLE
    spread = KM_CHI_SQUARE * KM_PROPORTION * (1 - KM_PROPORTION)
    sample = spread * population / (KM_MARGIN**2 * (population - 1) + spread)
    return math.ceil(sample)


def is_representative(respondents: int, population: int) -> bool:
    """Whether an index over ``respondents`` may be published without 'not yet representative'."""
    if respondents < 0:
        raise ValueError(f"respondents must not be negative, got {respondents}")
    return respondents >= krejcie_morgan(population)
