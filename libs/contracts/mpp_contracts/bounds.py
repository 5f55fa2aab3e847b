"""Bounded field types for every request schema: what a client may send, stated once.

Each type carries its bounds as marshmallow validators (``Length``, ``Range``, ``Regexp``), so
the OpenAPI document generated from the schemas shows them (``maxLength``, ``minimum``/``maximum``,
``pattern``) and the services, which load the same schemas, never hand a database a value it
cannot store: no NUL byte (PostgreSQL text refuses it), no lone UTF-16 surrogate (UTF-8 cannot
encode it), no integer beyond the column (int4), no string beyond the column, no date outside
:data:`FIRST_DAY`–:data:`LAST_DAY`.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time

from marshmallow import ValidationError, fields, validate

#: ids are UUIDs today; any short safe slug is accepted (and answers "not found")
ID_MAX = 36
ID_PATTERN = rf"^[A-Za-z0-9][A-Za-z0-9_-]{{0,{ID_MAX - 1}}}$"
INT4_MAX = 2_147_483_647  # PostgreSQL ``integer``: every integer column of the mall
FIRST_DAY = date(2000, 1, 1)
LAST_DAY = date(2100, 12, 31)
DAY_RANGE = f"{FIRST_DAY.isoformat()} to {LAST_DAY.isoformat()}"
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
UNSTORABLE_MESSAGE = "must not contain a NUL character or an unpaired surrogate"


def storable(text: str) -> bool:
    """True if a database and UTF-8 can hold ``text`` (no NUL, no lone surrogate)."""
    return _UNSTORABLE.search(text) is None


def _check_storable(value) -> None:
    if isinstance(value, str) and not storable(value):
        raise ValidationError(UNSTORABLE_MESSAGE)


class Text(fields.String):
    """A string of at most ``max_length`` characters (``min_length`` at least) that a database
    can store. Extra validators (``validate=``) run after those bounds."""

    def __init__(self, *, max_length: int, min_length: int | None = None, **kwargs) -> None:
        extra = kwargs.pop("validate", None)
        extra = [] if extra is None else list(extra) if isinstance(extra, list) else [extra]
        bounds = validate.Length(min=min_length, max=max_length)
        super().__init__(validate=[bounds, _check_storable, *extra], **kwargs)


class Pattern(fields.String):
    """A string matching ``pattern`` whole (``^…$`` in the document; matched with ``fullmatch``
    here, so no trailing newline slips through). A pattern of ASCII classes also keeps NUL and
    surrogates out. ``max_length`` is documented too."""

    def __init__(self, pattern: str, *, max_length: int, **kwargs) -> None:
        whole = re.compile(pattern.removeprefix("^").removesuffix("$"))

        def fullmatch(value: str) -> None:
            if whole.fullmatch(value) is None:
                raise ValidationError(f"must match {pattern}")

        checks = [validate.Length(max=max_length), validate.Regexp(pattern), fullmatch]
        super().__init__(validate=checks, **kwargs)


class Id(Pattern):
    """The id of a mall resource (agency, service, counter, ticket, booking, payment, …)."""

    def __init__(self, **kwargs) -> None:
        super().__init__(ID_PATTERN, max_length=ID_MAX, **kwargs)


class Int(fields.Integer):
    """An integer within ``minimum``–``maximum`` (``maximum`` at most the int4 column's).
    A number with a fraction (``2.5``) is refused, not truncated; digits in a query string
    (``"5"``) are read as the integer they spell."""

    def __init__(self, *, minimum: int, maximum: int = INT4_MAX, **kwargs) -> None:
        if maximum > INT4_MAX:
            raise ValueError("an integer field of the mall fits a PostgreSQL integer column")
        super().__init__(validate=validate.Range(min=minimum, max=maximum), **kwargs)

    def _validated(self, value):
        if isinstance(value, float) and not value.is_integer():
            raise self.make_error("invalid", input=value)
        return super()._validated(value)


def _within_days(value: date | datetime) -> None:
    day = value.date() if isinstance(value, datetime) else value  # its own offset's day
    if not FIRST_DAY <= day <= LAST_DAY:
        raise ValidationError(f"must be from {DAY_RANGE}")


def _documented_days(kwargs: dict, default: str, first: str, last: str) -> dict:
    metadata = kwargs.pop("metadata", {})
    description = metadata.get("description", default)
    # apispec renders a Range over dates as date objects; the bounds go in as text instead
    return {
        **metadata,
        "description": f"{description} ({DAY_RANGE})",
        "x-minimum": first,
        "x-maximum": last,
    }


class Day(fields.Date):
    """A calendar day (``YYYY-MM-DD``) between :data:`FIRST_DAY` and :data:`LAST_DAY`."""

    def __init__(self, **kwargs) -> None:
        metadata = _documented_days(kwargs, "A day", FIRST_DAY.isoformat(), LAST_DAY.isoformat())
        super().__init__(format="iso", validate=_within_days, metadata=metadata, **kwargs)


class Moment(fields.AwareDateTime):
    """A date-time with its offset, on a day (at that offset) from :data:`FIRST_DAY` to
    :data:`LAST_DAY`."""

    def __init__(self, **kwargs) -> None:
        first = datetime.combine(FIRST_DAY, time.min, tzinfo=UTC).isoformat()
        last = datetime.combine(LAST_DAY, time.max, tzinfo=UTC).isoformat()
        metadata = _documented_days(kwargs, "A date-time with offset", first, last)
        super().__init__(validate=_within_days, metadata=metadata, **kwargs)
