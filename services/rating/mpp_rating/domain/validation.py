"""Field-level checks of a citizen's rating submission.

A citizen fills the whole form once with a one-time token, so every problem is reported in one go
(a list of errors, never the first only) and nothing here raises on bad input: the caller turns the
list into one 400 response. The comment is stored exactly as typed (no trimming, no normalisation):
it is the citizen's own words and may become a complaint.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mpp_rating.domain.aggregates import STARS_MAX, STARS_MIN
from mpp_rating.domain.ikm import ANSWER_MAX, ANSWER_MIN, ELEMENTS

MAX_COMMENT = 1000


@dataclass(frozen=True)
class FieldError:
    """One problem with one field; ``field`` is a dotted path such as ``answers.U3``."""

    field: str
    code: str
    message: str


def _is_int(value: Any) -> bool:
    """bool is an int subclass in Python but ``true`` is not a rating."""
    return isinstance(value, int) and not isinstance(value, bool)


def validate_submission(
    stars: Any,
    answers: Any,
    comment: Any,
    *,
    max_comment: int = MAX_COMMENT,
) -> list[FieldError]:
    """All field errors of a submission; an empty list means it may be stored as given.

    Answers may cover any subset of U1–U9 (an empty mapping or None means no survey answers); the
    comment may be None or a string of at most ``max_comment`` characters (code points).
    """
    errors: list[FieldError] = []

    if stars is None:
        errors.append(FieldError("stars", "required", "stars is required"))
    elif not _is_int(stars):
        errors.append(FieldError("stars", "type", "stars must be an integer"))
    elif not STARS_MIN <= stars <= STARS_MAX:
        errors.append(
            FieldError("stars", "range", f"stars must be between {STARS_MIN} and {STARS_MAX}")
        )

    if answers is not None:
        if not isinstance(answers, Mapping):
            errors.append(FieldError("answers", "type", "answers must be an object"))
        else:
            errors.extend(_answer_errors(answers))

    if comment is not None:
        if not isinstance(comment, str):
            errors.append(FieldError("comment", "type", "comment must be a string"))
        elif len(comment) > max_comment:
            errors.append(
                FieldError(
                    "comment", "too_long", f"comment must be at most {max_comment} characters"
                )
            )
    return errors


def _answer_errors(answers: Mapping[Any, Any]) -> list[FieldError]:
    errors: list[FieldError] = []
    for key in sorted(answers, key=str):
        value = answers[key]
        path = f"answers.{key}"
        if key not in ELEMENTS:
            errors.append(FieldError(path, "unknown_element", "survey elements are U1 to U9 only"))
        elif not _is_int(value):
            errors.append(FieldError(path, "type", "an answer must be an integer"))
        elif not ANSWER_MIN <= value <= ANSWER_MAX:
            errors.append(
                FieldError(path, "range", f"an answer must be {ANSWER_MIN} to {ANSWER_MAX}")
            )
    return errors
