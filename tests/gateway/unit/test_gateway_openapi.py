"""The OpenAPI document: valid, generated from the route table, errors and auth documented."""

from __future__ import annotations

import pytest
from openapi_spec_validator import validate

import mpp_gateway.service  # noqa: F401  (registers every route)
from mpp_gateway.http import ROUTES
from mpp_gateway.openapi import HIDDEN, build_spec


@pytest.fixture(scope="module")
def spec() -> dict:
    return build_spec()


def test_the_document_is_valid_openapi_3(spec):
    validate(spec)
    assert spec["openapi"].startswith("3.")
    assert spec["components"]["securitySchemes"]["apiKey"]["scheme"] == "bearer"


def test_every_route_is_documented_with_its_security(spec):
    for route in ROUTES:
        if route.path in HIDDEN:
            continue
        operation = spec["paths"][route.path][route.method.lower()]
        if route.roles is None:
            assert operation["security"] == [], route
        else:
            assert operation["security"] == [{"apiKey": []}], route
            assert {"401", "403"} <= set(operation["responses"]), route


def test_v1_errors_use_the_envelope_and_retry_after(spec):
    for path, operations in spec["paths"].items():
        if not path.startswith("/v1/"):
            continue
        for operation in operations.values():
            for status in ("404", "422", "429", "503"):
                ref = operation["responses"][status]["$ref"]
                assert ref == f"#/components/responses/Error{status}"
    error503 = spec["components"]["responses"]["Error503"]
    assert "Retry-After" in error503["headers"]
    assert error503["content"]["application/json"]["schema"]["$ref"].endswith("/ErrorEnvelope")


def test_lists_are_pages_and_creates_take_an_idempotency_key(spec):
    keys = spec["paths"]["/v1/agencies/{agency}/api-keys"]
    listing = keys["get"]
    names = {p.get("name") for p in listing["parameters"]}
    assert {"cursor", "limit"} <= names
    page = listing["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
    page_schema = spec["components"]["schemas"][page.rsplit("/", 1)[1]]
    assert set(page_schema["properties"]) == {"items", "next_cursor"}
    refs = [p.get("$ref", "") for p in keys["post"]["parameters"]]
    assert "#/components/parameters/Idempotency-Key" in refs
    for route in ROUTES:
        if route.idempotent:
            params = spec["paths"][route.path][route.method.lower()]["parameters"]
            assert "#/components/parameters/Idempotency-Key" in [p.get("$ref") for p in params]


def test_ticket_actions_are_enumerated_with_their_bodies(spec):
    """A generated client sees each action of POST /v1/tickets/{ticket}/{action} (issue 18)."""
    operation = spec["paths"]["/v1/tickets/{ticket}/{action}"]["post"]
    action = next(p for p in operation["parameters"] if p.get("name") == "action")
    assert action["schema"]["enum"] == [
        "call",
        "recall",
        "start",
        "complete",
        "no-show",
        "transfer",
        "cancel",
    ]
    for name in action["schema"]["enum"]:
        assert f"`{name}`" in action["description"]
    assert "`counter_id`, required" in action["description"]
    assert "`to_service_id`, required" in action["description"]
