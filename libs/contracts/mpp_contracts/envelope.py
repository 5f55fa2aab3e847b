"""The one event envelope every service publishes and consumes.

Producers dump strictly; consumers load with ``unknown=EXCLUDE`` so additive changes never
break them.
All values are plain JSON types so that consumers written without nameko can read events too.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from marshmallow import EXCLUDE, Schema, fields, validate

from mpp_contracts.events import EVENT_TYPES
from mpp_contracts.rpc import shared


class EnvelopeSchema(Schema):
    id = fields.UUID(required=True)
    type = fields.String(required=True, validate=validate.OneOf(sorted(EVENT_TYPES)))
    version = fields.Integer(required=True, validate=validate.Range(min=1))
    occurred_at = fields.AwareDateTime(required=True, format="iso")
    source = fields.String(required=True)
    mall = fields.String(required=True)
    correlation_id = fields.String(required=True)
    payload = fields.Dict(required=True)


class UnknownEventVersion(ValueError):
    """A consumer received a version of an event type it does not know how to read."""


def make_envelope(
    event_type: str,
    payload: dict[str, Any],
    *,
    source: str,
    mall: str,
    correlation_id: str | None = None,
    occurred_at: datetime | None = None,
) -> dict[str, Any]:
    """Build a validated, JSON-ready envelope; the payload is dumped through its schema."""
    spec = EVENT_TYPES[event_type]
    schema = shared(spec.schema)
    body = {
        "id": str(uuid.uuid4()),
        "type": event_type,
        "version": spec.version,
        "occurred_at": (occurred_at or datetime.now(UTC)).isoformat(),
        "source": source,
        "mall": mall,
        "correlation_id": correlation_id or str(uuid.uuid4()),
        "payload": schema.dump(schema.load(_jsonable(payload))),
    }
    shared(EnvelopeSchema).load(body)
    return body


def _jsonable(value: Any) -> Any:
    """Datetimes become ISO strings so that the schema loads what a consumer would see."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {key: _jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(item) for item in value]
    return value


def read_envelope(body: dict[str, Any]) -> dict[str, Any]:
    """Load an incoming envelope and its payload (unknown fields are ignored)."""
    envelope = shared(EnvelopeSchema, unknown=EXCLUDE).load(body)
    spec = EVENT_TYPES[envelope["type"]]
    if envelope["version"] > spec.version:
        raise UnknownEventVersion(f"{envelope['type']} v{envelope['version']}")
    envelope["id"] = str(envelope["id"])
    envelope["payload"] = shared(spec.schema, unknown=EXCLUDE).load(envelope["payload"])
    return envelope
