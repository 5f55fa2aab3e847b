"""Cursor pagination shared by the gateway and the services' list RPCs (docs/api-guide.md).

A list RPC takes ``cursor`` (opaque string or None) and ``limit`` and returns
``{"items": [...], "next_cursor": str | None}``. Cursors are URL-safe base64 of a small JSON
value chosen by the service (usually the sort key of the last row): clients never parse them.
"""

from __future__ import annotations

import base64
import binascii
import json
from datetime import datetime
from typing import Any

from marshmallow import Schema

from mpp_contracts.bounds import FIRST_DAY, LAST_DAY, Int, Pattern, storable
from mpp_contracts.errors import ValidationFailed

DEFAULT_LIMIT = 20
MAX_LIMIT = 100
MAX_CURSOR = 500
MAX_CURSOR_TEXT = 200  # one string inside a cursor (a code, an id, a timestamp)


class PageQuerySchema(Schema):
    cursor = Pattern(
        rf"^[A-Za-z0-9_-]{{0,{MAX_CURSOR}}}$",
        max_length=MAX_CURSOR,
        load_default=None,
        allow_none=True,
        metadata={"description": "Opaque cursor from the previous page's next_cursor"},
    )
    limit = Int(
        minimum=1,
        maximum=MAX_LIMIT,
        load_default=DEFAULT_LIMIT,
        metadata={"description": f"Page size, 1 to {MAX_LIMIT}"},
    )


def encode_cursor(position: Any) -> str:
    raw = json.dumps(position, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _invalid_cursor() -> ValidationFailed:
    return ValidationFailed(
        "VALIDATION_FAILED", "invalid fields", {"cursor": ["not a valid cursor"]}
    )


def _position_item(value: Any, kind: type) -> Any:
    """One element of a cursor's position, checked against the type the list sorts by."""
    if kind is str:
        if isinstance(value, str) and len(value) <= MAX_CURSOR_TEXT and storable(value):
            return value
    elif kind is datetime:  # an aware ISO timestamp within the mall's days
        if isinstance(value, str) and len(value) <= MAX_CURSOR_TEXT:
            try:
                moment = datetime.fromisoformat(value)
            except ValueError:
                moment = None
            if moment and moment.tzinfo and FIRST_DAY <= moment.date() <= LAST_DAY:
                return moment
    elif kind is int:
        if isinstance(value, int) and not isinstance(value, bool) and abs(value) < 2**31:
            return value
    raise _invalid_cursor()


def decode_cursor(cursor: str | None, shape: tuple[type, ...] | None = None) -> Any:
    """The position a cursor stands for (None for the first page); a forged or damaged cursor
    is a ``ValidationFailed`` on the ``cursor`` field, never a server error.

    With ``shape`` (the types of the sort key: ``str``, ``int`` or ``datetime`` for an aware
    ISO timestamp), the position must be a list of exactly those, strings short and storable;
    it is returned as a list, timestamps parsed. Services pass a shape: a crafted cursor must
    not put ``null``, an object or a NUL byte into a query."""
    if not cursor:
        return None
    if len(cursor) > MAX_CURSOR:
        raise _invalid_cursor()
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        position = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, TypeError, binascii.Error, RecursionError):
        raise _invalid_cursor() from None
    if shape is None:
        return position
    if not isinstance(position, list) or len(position) != len(shape):
        raise _invalid_cursor()
    return [_position_item(value, kind) for value, kind in zip(position, shape, strict=True)]


def page(items: list, next_position: Any | None) -> dict:
    return {
        "items": items,
        "next_cursor": encode_cursor(next_position) if next_position is not None else None,
    }
