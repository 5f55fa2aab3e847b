"""The gateway's input bounds without a server: JSON depth and text, path values, cursors, and
the shared field types' bounds as the OpenAPI document shows them."""

from __future__ import annotations

import base64
import json
import time
from datetime import UTC, datetime

import pytest
from marshmallow import ValidationError

import mpp_gateway.service  # noqa: F401  (registers every route)
from mpp_contracts import errors
from mpp_contracts import rpc as contracts
from mpp_contracts.bounds import INT4_MAX
from mpp_contracts.pagination import decode_cursor, encode_cursor
from mpp_gateway import inputs
from mpp_gateway.http import ROUTES
from mpp_gateway.openapi import build_spec


def code_of(call) -> tuple[type, str]:
    with pytest.raises(errors.MppError) as caught:
        call()
    return type(caught.value), caught.value.code


@pytest.mark.parametrize("deep", [33, 1_000, 100_000])
def test_json_nested_too_deep_is_refused_before_parsing(deep):
    for body in (b"[" * deep + b"]" * deep, b'{"a":' * deep + b"1" + b"}" * deep):
        started = time.perf_counter()
        assert code_of(lambda body=body: inputs.parse_json(body)) == (
            errors.BadRequest,
            "JSON_TOO_DEEP",
        )
        assert time.perf_counter() - started < 1


def test_json_within_the_depth_and_brackets_inside_strings_are_fine():
    assert inputs.parse_json(b"[" * 32 + b"]" * 32) == json.loads("[" * 32 + "]" * 32)
    text = json.dumps({"a": "[" * 1000 + '{"\\"'})
    assert inputs.parse_json(text.encode()) == {"a": "[" * 1000 + '{"\\"'}


@pytest.mark.parametrize("raw", [b"{", b"\xff\xfe", b"NaN", b'{"a": Infinity}', b"1" * 5000])
def test_malformed_or_non_standard_json_is_400(raw):
    assert code_of(lambda: inputs.parse_json(raw)) == (errors.BadRequest, "MALFORMED_JSON")


def test_nul_and_lone_surrogates_anywhere_are_422_naming_the_field():
    raw = (
        b'{"service_id": "\\ud800", "a": [{"b": "x\\u0000"}], "\\udfff": 1, "ok": "\\ud83d\\ude00"}'
    )
    with pytest.raises(errors.ValidationFailed) as caught:
        inputs.parse_json(raw)
    assert set(caught.value.details) == {"service_id", "a.0.b", "?"}
    json.dumps(caught.value.details).encode("utf-8")  # the envelope stays encodable
    assert inputs.parse_json(b'{"ok": "\\ud83d\\ude00 \\u00e9"}') == {"ok": "😀 é"}


@pytest.mark.parametrize("value", ["a\x00b", "a:b c", "x" * 37, "é", " ", "", "a\n"])
def test_a_path_value_that_is_no_id_is_that_resources_404(value):
    assert code_of(lambda: inputs.check_path_values({"ticket": value})) == (
        errors.NotFound,
        "TICKET_NOT_FOUND",
    )
    assert code_of(lambda: inputs.check_path_values({"key_id": value}))[1] == "API_KEY_NOT_FOUND"


def test_ids_and_named_path_values_pass():
    inputs.check_path_values(
        {"ticket": "0b7c1f52-3c2e-4a8e-9d7e-2f8f6f0e3a11", "provider": "midtrans"}
    )
    inputs.check_path_values({"action": "no-show", "asset": "swagger-ui.css", "key_id": "k_1"})


@pytest.mark.parametrize(
    "position",
    [
        [None, None],
        {"a": 1},
        [1],
        [[], {}],
        [1, 2],
        ["x\x00", "y"],
        ["\ud800", "y"],
        ["x" * 201, "y"],
    ],
)
def test_a_crafted_cursor_is_a_422_on_cursor(position):
    cursor = base64.urlsafe_b64encode(json.dumps(position).encode()).decode().rstrip("=")
    with pytest.raises(errors.ValidationFailed) as caught:
        decode_cursor(cursor, (str, str))
    assert caught.value.details == {"cursor": ["not a valid cursor"]}


@pytest.mark.parametrize(
    "stamp", ["0001-01-01T00:00:00+00:00", "2026-01-01T00:00:00", "9999-12-31T00:00:00+14:00", "x"]
)
def test_a_cursor_timestamp_must_be_aware_and_within_the_mall_days(stamp):
    with pytest.raises(errors.ValidationFailed):
        decode_cursor(encode_cursor([stamp, "id"]), (datetime, str))


def test_a_cursor_of_the_right_shape_decodes():
    moment = datetime(2026, 11, 30, 8, tzinfo=UTC)
    assert decode_cursor(encode_cursor([moment.isoformat(), "id"]), (datetime, str)) == [
        moment,
        "id",
    ]
    assert decode_cursor(encode_cursor(["KTP", "id"]), (str, str)) == ["KTP", "id"]
    for bad in ("!!!", "x" * 501):
        with pytest.raises(errors.ValidationFailed):
            decode_cursor(bad, (str, str))


@pytest.mark.parametrize(
    ("schema", "body", "field"),
    [
        (contracts.ServiceUpdateSchema, {"daily_quota": 2_147_483_648}, "daily_quota"),
        (contracts.ServiceUpdateSchema, {"daily_quota": 9_223_372_036_854_775_808}, "daily_quota"),
        (contracts.RefundCreateSchema, {"amount_idr": INT4_MAX + 1}, "amount_idr"),
        (contracts.TicketCreateSchema, {"service_id": "\ud800"}, "service_id"),
        (contracts.TicketCreateSchema, {"service_id": "a:b c"}, "service_id"),
        (contracts.AgencyCreateSchema, {"code": "AB", "name": "a\x00b"}, "name"),
        (contracts.RatingSummaryQuerySchema, {"from": "0001-01-01"}, "from"),
        (contracts.SettlementQuerySchema, {"date": "9999-12-31"}, "date"),
        (contracts.LeaderboardQuerySchema, {"period": "9999-12"}, "period"),
        (contracts.ServicesQuerySchema, {"limit": "101"}, "limit"),
    ],
)
def test_the_schemas_bound_every_value_the_issue_found(schema, body, field):
    with pytest.raises(ValidationError) as caught:
        schema().load(body)
    assert field in caught.value.normalized_messages()


def _walk(node):
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk(value)


def test_openapi_shows_a_bound_on_every_request_string_integer_and_path_value():
    spec = build_spec()
    unbounded = []
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            for parameter in operation.get("parameters", []):
                schema = parameter.get("schema", {}) if isinstance(parameter, dict) else {}
                if schema.get("type") == "string" and not (
                    "maxLength" in schema or "enum" in schema or "format" in schema
                ):
                    unbounded.append((method, path, parameter["name"]))
                if schema.get("type") == "integer" and "maximum" not in schema:
                    unbounded.append((method, path, parameter["name"]))
    bodies = {r.body.__name__.removesuffix("Schema") for r in ROUTES if r.body is not None}
    components = spec["components"]["schemas"]
    names = bodies | {"OpeningPeriod", "BookingRules"}
    for name in names:
        for node in _walk(components[name]):
            kind = node.get("type")
            if kind == "string" and not ({"maxLength", "enum", "format"} & set(node)):
                unbounded.append((name, node))
            if kind == "integer" and node.get("maximum", INT4_MAX + 1) > INT4_MAX:
                unbounded.append((name, node))
            if kind == "array" and "maxItems" not in node and node is not components[name]:
                unbounded.append((name, node))
    assert not unbounded
