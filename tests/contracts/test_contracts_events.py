"""Every event type round-trips through the envelope; recorded v1 payloads still load."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from marshmallow import Schema, ValidationError, fields

from mpp_contracts.envelope import UnknownEventVersion, make_envelope, read_envelope
from mpp_contracts.events import EVENT_TYPES

FIXTURES = Path(__file__).parent / "fixtures"
NOW = datetime(2026, 11, 28, 3, 0, tzinfo=UTC)


def sample(schema: Schema) -> dict:
    """A value for every declared field, typed by the field class."""
    values = {}
    for name, field in schema.fields.items():
        if isinstance(field, fields.AwareDateTime):
            values[name] = NOW
        elif isinstance(field, fields.Integer):
            values[name] = 1
        elif isinstance(field, fields.Boolean):
            values[name] = True
        elif isinstance(field, fields.List):
            values[name] = ["x"]
        elif isinstance(field, fields.Dict):
            values[name] = {"U1": 4}
        elif isinstance(field, fields.String) and name in ("stage",):
            values[name] = "waiting"
        elif name == "access_digest":
            values[name] = "0" * 64
        else:
            values[name] = f"{name}-value"
    return values


@pytest.mark.parametrize("event_type", sorted(EVENT_TYPES))
def test_every_event_type_round_trips_as_plain_json(event_type):
    spec = EVENT_TYPES[event_type]
    payload = sample(spec.schema())
    envelope = make_envelope(
        event_type, payload, source=spec.source, mall="mpp-test", correlation_id="corr-1"
    )
    wire = json.loads(json.dumps(envelope))  # plain JSON types only: no kombu type wrappers
    assert wire == envelope
    loaded = read_envelope(wire)
    assert loaded["type"] == event_type and loaded["version"] == spec.version
    assert loaded["correlation_id"] == "corr-1" and loaded["source"] == spec.source
    for name, value in payload.items():
        got = loaded["payload"][name]
        assert got == value, f"{event_type}.{name}"


def test_producer_refuses_a_payload_missing_a_required_field():
    with pytest.raises(ValidationError):
        make_envelope("ticket_issued", {"ticket_id": "t"}, source="queue", mall="m")


def test_consumer_ignores_unknown_fields_added_later():
    envelope = json.loads((FIXTURES / "payment_succeeded.v1.json").read_text())
    envelope["payload"]["new_optional_field"] = "added in a later release"
    envelope["extra_header"] = 1
    loaded = read_envelope(envelope)
    assert "new_optional_field" not in loaded["payload"]
    assert loaded["payload"]["amount_idr"] == 15000


@pytest.mark.parametrize("path", sorted(FIXTURES.glob("*.json")), ids=lambda p: p.name)
def test_recorded_v1_payloads_still_load(path):
    envelope = json.loads(path.read_text())
    loaded = read_envelope(envelope)
    assert loaded["id"] == envelope["id"]
    assert loaded["payload"]["ticket_id"] == envelope["payload"]["ticket_id"]


def test_a_newer_version_than_known_is_refused_not_misread():
    envelope = json.loads((FIXTURES / "ticket_completed.v1.json").read_text())
    envelope["version"] = 99
    with pytest.raises(UnknownEventVersion):
        read_envelope(envelope)


def test_no_event_schema_has_a_field_for_a_nik():
    for event_type, spec in EVENT_TYPES.items():
        assert not any("nik" in name for name in spec.schema().fields), event_type


def test_a_completion_from_before_routing_loads_as_one_payment_decides():
    """ticket_completed gained optional fields (issue 20): a recorded one loads without them, as
    a completion routed to the payment service (``payment_required`` None)."""
    envelope = json.loads((FIXTURES / "ticket_completed.v1.json").read_text())
    loaded = read_envelope(envelope)["payload"]
    assert loaded["payment_required"] is None and loaded["payment_terms_version"] is None


def test_a_completion_from_before_access_digests_loads_without_one():
    """``access_digest`` was added later (issue 20): a recorded completion loads with None, for
    which the gateway asks the queue whether the reader may see the invoice."""
    envelope = json.loads((FIXTURES / "ticket_completed.v1.json").read_text())
    assert "access_digest" not in envelope["payload"]
    assert read_envelope(envelope)["payload"]["access_digest"] is None


def test_a_completion_refuses_an_access_digest_that_is_not_sha256_hex():
    envelope = json.loads((FIXTURES / "ticket_completed.v1.json").read_text())
    payload = {**envelope["payload"], "access_digest": "the-code-itself"}
    with pytest.raises(ValidationError):
        make_envelope("ticket_completed", payload, source="queue", mall="m")
