from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mpp_rating.domain.ikm import ELEMENTS
from mpp_rating.domain.validation import FieldError, validate_submission


def codes(errors: list[FieldError]) -> set[tuple[str, str]]:
    return {(error.field, error.code) for error in errors}


@pytest.mark.parametrize(
    ("stars", "answers", "comment"),
    [
        (5, {}, None),
        (1, None, ""),
        (3, {"U1": 1, "U9": 4}, "Antrean cepat, petugas ramah."),
        (4, dict.fromkeys(ELEMENTS, 4), "x" * 1000),
    ],
)
def test_valid_submissions_have_no_errors(stars: int, answers: Any, comment: Any) -> None:
    assert validate_submission(stars, answers, comment) == []


@pytest.mark.parametrize(
    ("stars", "expected"),
    [
        (None, ("stars", "required")),
        (0, ("stars", "range")),
        (6, ("stars", "range")),
        (-1, ("stars", "range")),
        (4.0, ("stars", "type")),
        ("5", ("stars", "type")),
        (True, ("stars", "type")),
    ],
)
def test_stars_must_be_an_integer_from_1_to_5(stars: Any, expected: tuple[str, str]) -> None:
    assert codes(validate_submission(stars, {}, None)) == {expected}


@pytest.mark.parametrize(
    ("answers", "expected"),
    [
        ({"U10": 3}, {("answers.U10", "unknown_element")}),
        ({"u1": 3}, {("answers.u1", "unknown_element")}),
        ({"U1": 0}, {("answers.U1", "range")}),
        ({"U1": 5}, {("answers.U1", "range")}),
        ({"U1": "4"}, {("answers.U1", "type")}),
        ({"U1": False}, {("answers.U1", "type")}),
        ({"U1": 3.5}, {("answers.U1", "type")}),
        ([4, 4, 4], {("answers", "type")}),
        ("U1=4", {("answers", "type")}),
    ],
)
def test_answers_are_u1_to_u9_with_integers_1_to_4(answers: Any, expected: set) -> None:
    assert codes(validate_submission(5, answers, None)) == expected


@pytest.mark.parametrize(
    ("comment", "max_comment", "expected"),
    [
        ("x" * 1001, 1000, {("comment", "too_long")}),
        ("abc", 2, {("comment", "too_long")}),
        ("ab", 2, set()),
        ("é" * 10, 10, set()),  # counted in characters, not UTF-8 bytes
        (42, 1000, {("comment", "type")}),
    ],
)
def test_comment_length_and_type(comment: Any, max_comment: int, expected: set) -> None:
    assert codes(validate_submission(5, {}, comment, max_comment=max_comment)) == expected


def test_every_error_is_reported_at_once() -> None:
    errors = validate_submission(9, {"U1": 7, "U2": 0, "X": 1}, "y" * 2000)
    assert codes(errors) == {
        ("stars", "range"),
        ("answers.U1", "range"),
        ("answers.U2", "range"),
        ("answers.X", "unknown_element"),
        ("comment", "too_long"),
    }
    assert all(error.message for error in errors)


@given(
    stars=st.one_of(st.none(), st.integers(), st.floats(), st.text(), st.booleans()),
    answers=st.one_of(
        st.none(),
        st.dictionaries(
            st.one_of(st.text(max_size=4), st.integers()),
            st.one_of(st.integers(), st.text(), st.none(), st.floats()),
        ),
        st.lists(st.integers()),
    ),
    comment=st.one_of(st.none(), st.text(max_size=1200), st.integers()),
)
def test_never_raises_and_accepts_exactly_the_valid_inputs(
    stars: Any, answers: Any, comment: Any
) -> None:
    errors = validate_submission(stars, answers, comment)
    valid = (
        type(stars) is int
        and 1 <= stars <= 5
        and (
            answers is None
            or (
                isinstance(answers, dict)
                and all(
                    key in ELEMENTS and type(value) is int and 1 <= value <= 4
                    for key, value in answers.items()
                )
            )
        )
        and (comment is None or (isinstance(comment, str) and len(comment) <= 1000))
    )
    assert (errors == []) is valid
