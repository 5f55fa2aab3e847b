from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mpp_rating.domain.ikm import (
    ELEMENT_NAMES,
    ELEMENTS,
    compute_ikm,
    grade,
    is_representative,
    krejcie_morgan,
    round_half_up,
)


def per_element(values: list[int]) -> dict[str, int]:
    return dict(zip(ELEMENTS, values, strict=True))


def test_elements_are_the_nine_unsur_with_their_names() -> None:
    assert ELEMENTS == ("U1", "U2", "U3", "U4", "U5", "U6", "U7", "U8", "U9")
    assert ELEMENT_NAMES["U2"] == "Sistem, Mekanisme, dan Prosedur"
    assert ELEMENT_NAMES["U8"] == "Penanganan Pengaduan, Saran dan Masukan"
    assert ELEMENT_NAMES["U9"] == "Sarana dan Prasarana"
    assert set(ELEMENT_NAMES) == set(ELEMENTS)


def test_data_set_1_everyone_answers_4() -> None:
    # 10 respondents, every answer 4: each NRR = 40 / 10 = 4.
    # exact:      IKM = 9 × 4 × 1/9 = 4          → converted 4 × 25 = 100.00 → A
    # regulation: IKM = 9 × 4 × 0.111 = 3.996    → converted 3.996 × 25 = 99.90 → A
    sums, counts = per_element([40] * 9), per_element([10] * 9)

    exact = compute_ikm(sums, counts)
    assert exact.ikm == Decimal("4.0000")
    assert exact.converted == Decimal("100.00")
    assert (exact.grade, exact.grade_label) == ("A", "Sangat Baik")
    assert exact.element("U1").weighted_nrr == Decimal("0.4444")

    regulation = compute_ikm(sums, counts, weight="regulation")
    assert regulation.ikm == Decimal("3.9960")
    assert regulation.converted == Decimal("99.90")
    assert regulation.element("U1").weighted_nrr == Decimal("0.4440")
    assert regulation.grade == "A"


def test_data_set_2_five_respondents_mixed_answers() -> None:
    # 5 respondents; sums per element and NRR = sum / 5:
    #   U1 16 → 3.2   U2 15 → 3.0   U3 14 → 2.8   U4 20 → 4.0   U5 15 → 3.0
    #   U6 17 → 3.4   U7 18 → 3.6   U8 12 → 2.4   U9 13 → 2.6         Σ NRR = 28.0
    # exact:      IKM = 28 / 9 = 3.1111…  → 3.1111; converted = 700 / 9 = 77.777… → 77.78 → B
    # regulation: IKM = 28 × 0.111 = 3.108 → 3.1080; converted = 77.70 → B
    # per element converted = NRR × 25: U1 80 B, U2 75 C, U3 70 C, U4 100 A, U8 60 D, U9 65 C
    sums = per_element([16, 15, 14, 20, 15, 17, 18, 12, 13])
    counts = per_element([5] * 9)

    exact = compute_ikm(sums, counts)
    assert exact.exact == Fraction(28, 9)
    assert exact.ikm == Decimal("3.1111")
    assert exact.converted == Decimal("77.78")
    assert exact.grade == "B"
    assert exact.element("U1").nrr == Decimal("3.2000")
    assert exact.element("U1").weighted_nrr == Decimal("0.3556")  # 3.2 / 9 = 0.35555…
    expected_elements = {
        "U1": ("80.00", "B"),
        "U2": ("75.00", "C"),
        "U3": ("70.00", "C"),
        "U4": ("100.00", "A"),
        "U8": ("60.00", "D"),
        "U9": ("65.00", "C"),
    }
    for code, (converted, letter) in expected_elements.items():
        assert exact.element(code).converted == Decimal(converted)
        assert exact.element(code).grade == letter

    regulation = compute_ikm(sums, counts, weight="regulation")
    assert regulation.ikm == Decimal("3.1080")
    assert regulation.converted == Decimal("77.70")
    assert regulation.element("U1").weighted_nrr == Decimal("0.3552")  # 3.2 × 0.111
    assert regulation.grade == "B"


def test_data_set_3_the_weight_decides_the_grade() -> None:
    # 100 respondents; sums 360 350 340 370 355 345 365 350 345 → Σ NRR = 3180 / 100 = 31.80
    # exact:      IKM = 31.8 / 9 = 3.5333… → converted 88.333… → 88.33 → A (≥ 88.31)
    # regulation: IKM = 31.8 × 0.111 = 3.5298 → converted 88.245 → 88.25 → B
    sums = per_element([360, 350, 340, 370, 355, 345, 365, 350, 345])
    counts = per_element([100] * 9)

    exact = compute_ikm(sums, counts)
    assert (exact.ikm, exact.converted, exact.grade) == (Decimal("3.5333"), Decimal("88.33"), "A")

    regulation = compute_ikm(sums, counts, weight="regulation")
    assert regulation.ikm == Decimal("3.5298")
    assert regulation.converted == Decimal("88.25")
    assert (regulation.grade, regulation.grade_label) == ("B", "Baik")


def test_data_set_4_elements_answered_by_different_numbers_of_respondents() -> None:
    # Some respondents skipped elements, so each NRR divides by its own count:
    #   U1 13/4 = 3.25  U2 12/4 = 3.0  U3 10/4 = 2.5  U4 12/3 = 4.0  U5 12/4 = 3.0
    #   U6 14/4 = 3.5   U7 15/4 = 3.75 U8 5/2 = 2.5   U9 11/4 = 2.75        Σ NRR = 28.25
    # exact:      IKM = 28.25 / 9 = 3.13888… → 3.1389; converted 706.25 / 9 = 78.472… → 78.47 B
    # regulation: IKM = 28.25 × 0.111 = 3.13575 → 3.1358 (half up); converted 78.39375 → 78.39 B
    sums = per_element([13, 12, 10, 12, 12, 14, 15, 5, 11])
    counts = per_element([4, 4, 4, 3, 4, 4, 4, 2, 4])

    exact = compute_ikm(sums, counts)
    assert (exact.ikm, exact.converted, exact.grade) == (Decimal("3.1389"), Decimal("78.47"), "B")
    assert exact.element("U8").nrr == Decimal("2.5000")
    assert exact.element("U8").answer_count == 2

    regulation = compute_ikm(sums, counts, weight="regulation")
    assert (regulation.ikm, regulation.converted) == (Decimal("3.1358"), Decimal("78.39"))


def test_lowest_possible_answers_give_grade_d_under_both_weights() -> None:
    # All answers 1: exact 1 × 25 = 25.00; regulation 9 × 0.111 × 25 = 24.975 → 24.98, still D.
    sums, counts = per_element([3] * 9), per_element([3] * 9)
    assert compute_ikm(sums, counts).converted == Decimal("25.00")
    regulation = compute_ikm(sums, counts, weight="regulation")
    assert regulation.converted == Decimal("24.98")
    assert (regulation.grade, regulation.grade_label) == ("D", "Tidak Baik")


def test_an_element_nobody_answered_leaves_the_index_undefined() -> None:
    sums = per_element([16, 15, 14, 0, 15, 17, 18, 12, 13])
    counts = per_element([5, 5, 5, 0, 5, 5, 5, 5, 5])

    result = compute_ikm(sums, counts)

    assert result.missing_elements == ("U4",)
    assert (result.ikm, result.converted, result.grade, result.exact) == (None, None, None, None)
    assert result.element("U4").nrr is None
    assert result.element("U1").nrr == Decimal("3.2000")


def test_no_answers_at_all_lists_every_element_as_missing() -> None:
    result = compute_ikm({}, {})
    assert result.missing_elements == ELEMENTS
    assert result.converted is None


@pytest.mark.parametrize(
    ("sums", "counts"),
    [
        ({"U10": 4}, {"U10": 1}),
        ({"U1": 5}, {"U1": 1}),
        ({"U1": 0}, {"U1": 1}),
        ({"U1": 4}, {"U1": 0}),
        ({"U1": -1}, {"U1": -1}),
    ],
)
def test_impossible_sums_and_counts_are_rejected(sums: dict, counts: dict) -> None:
    with pytest.raises(ValueError):
        compute_ikm(sums, counts)


def test_unknown_weight_is_rejected() -> None:
    with pytest.raises(ValueError):
        compute_ikm({}, {}, weight="0.11")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("converted", "letter", "label"),
    [
        ("25.00", "D", "Tidak Baik"),
        ("64.99", "D", "Tidak Baik"),
        ("64.994", "D", "Tidak Baik"),
        ("64.995", "C", "Kurang Baik"),
        ("65.00", "C", "Kurang Baik"),
        ("76.60", "C", "Kurang Baik"),
        ("76.604", "C", "Kurang Baik"),
        ("76.605", "B", "Baik"),
        ("76.61", "B", "Baik"),
        ("88.30", "B", "Baik"),
        ("88.304", "B", "Baik"),
        ("88.305", "A", "Sangat Baik"),
        ("88.31", "A", "Sangat Baik"),
        ("100", "A", "Sangat Baik"),
        ("24.975", "D", "Tidak Baik"),
    ],
)
def test_grade_boundaries_after_rounding_half_up(converted: str, letter: str, label: str) -> None:
    assert grade(Decimal(converted)) == (letter, label)


def test_grade_rounds_exact_fractions_without_float_error() -> None:
    # 15321 / 200 = 76.605 exactly: half up gives 76.61 → B, where a float would give 76.60.
    assert grade(Fraction(15321, 200)) == ("B", "Baik")
    assert grade(Fraction(15321, 200) - Fraction(1, 10**9)) == ("C", "Kurang Baik")


@pytest.mark.parametrize("converted", ["-0.01", "100.01", "150"])
def test_grade_rejects_values_off_the_scale(converted: str) -> None:
    with pytest.raises(ValueError):
        grade(Decimal(converted))


@pytest.mark.parametrize(
    ("value", "places", "expected"),
    [
        (Fraction(5, 1000), 2, "0.01"),
        (Fraction(-5, 1000), 2, "-0.01"),
        (Fraction(1, 3), 4, "0.3333"),
        (Decimal("2.675"), 2, "2.68"),
        (7, 2, "7.00"),
    ],
)
def test_round_half_up(value: Fraction | Decimal | int, places: int, expected: str) -> None:
    result = round_half_up(value, places)
    assert result == Decimal(expected)
    assert str(result) == expected


@given(
    answers=st.lists(
        st.lists(st.integers(min_value=1, max_value=4), min_size=9, max_size=9),
        min_size=1,
        max_size=30,
    )
)
def test_ikm_is_the_mean_of_element_means_and_stays_on_scale(answers: list[list[int]]) -> None:
    sums = per_element([sum(column) for column in zip(*answers, strict=True)])
    counts = per_element([len(answers)] * 9)

    exact = compute_ikm(sums, counts)
    regulation = compute_ikm(sums, counts, weight="regulation")

    expected = Fraction(sum(map(sum, answers)), 9 * len(answers))
    assert exact.exact == expected
    assert Decimal(25) <= exact.converted <= Decimal(100)
    assert exact.converted == round_half_up(expected * 25, 2)
    assert regulation.exact == expected * Fraction(999, 1000)
    assert regulation.converted <= exact.converted
    assert exact.grade == grade(exact.converted)[0]
    # A reported raw value × 25 lands within a cent of the reported converted value.
    assert abs(exact.ikm * 25 - exact.converted) <= Decimal("0.01")


@pytest.mark.parametrize(
    ("population", "sample"),
    [
        (100, 80),
        (1_000, 278),
        (10_000, 370),
        (100_000, 384),
        (1_000_000, 384),
        (10_000_000, 384),
        (0, 0),
        (1, 1),
        (10, 10),
    ],
)
def test_krejcie_morgan_matches_the_published_table(population: int, sample: int) -> None:
    assert krejcie_morgan(population) == sample


def test_krejcie_morgan_formula_just_below_the_table_cap() -> None:
    # The formula gives 382.63… → 383 at 99,999 (and at 100,000, where the table says 384).
    assert krejcie_morgan(99_999) == 383


@given(st.integers(min_value=0, max_value=200_000))
def test_krejcie_morgan_never_exceeds_population_or_384_and_grows(population: int) -> None:
    sample = krejcie_morgan(population)
    assert 0 <= sample <= min(population, 384)
    assert krejcie_morgan(population + 1) >= sample


def test_krejcie_morgan_rejects_negative_population() -> None:
    with pytest.raises(ValueError):
        krejcie_morgan(-1)


@pytest.mark.parametrize(
    ("respondents", "population", "expected"),
    [
        (79, 100, False),
        (80, 100, True),
        (277, 1_000, False),
        (278, 1_000, True),
        (383, 250_000, False),
        (384, 250_000, True),
        (0, 0, True),
    ],
)
def test_is_representative(respondents: int, population: int, expected: bool) -> None:
    assert is_representative(respondents, population) is expected
