"""Cursor pagination shared by the gateway and the services' list RPCs (docs/api-guide.md).

A list RPC takes ``cursor`` (opaque string or None) and ``limit`` and returns
``{"items": [...], "next_cursor": str | None}``. Cursors are URL-safe base64 of a small JSON
value chosen by the service (usually the sort key of the last row): clients never parse them.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from marshmallow import Schema, fields, validate

from mpp_contracts.errors import ValidationFailed

DEFAULT_LIMIT = 20
MAX_LIMIT = 100


class PageQuerySchema(Schema):
    cursor = fields.String(
        load_default=None,
        allow_none=True,
        validate=validate.Length(max=500),
        metadata={"description": "Opaque cursor from the previous page's next_cursor"},
    )
    limit = fields.Integer(
        load_default=DEFAULT_LIMIT,
        validate=validate.Range(min=1, max=MAX_LIMIT),
        metadata={"description": f"Page size, 1 to {MAX_LIMIT}"},
    )


def encode_cursor(position: Any) -> str:
    raw = json.dumps(position, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> Any:
    """The position a cursor stands for (None for the first page); a forged or damaged cursor
    is a ``ValidationFailed`` on the ``cursor`` field, never a server error."""
    if not cursor:
        return None
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        return json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, TypeError):
        raise ValidationFailed(
            "VALIDATION_FAILED", "invalid fields", {"cursor": ["not a valid cursor"]}
        ) from None


def page(items: list, next_position: Any | None) -> dict:
    return {
        "items": items,
        "next_cursor": encode_cursor(next_position) if next_position is not None else None,
    }
