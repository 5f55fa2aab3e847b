"""A route's declared body schema is the one that validates, once, in the route decorator."""

from __future__ import annotations

import json
from unittest import mock

import pytest
from marshmallow import Schema, fields, post_load
from nameko.testing.services import worker_factory
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request

from mpp_contracts import rpc as contracts
from mpp_gateway import http
from mpp_gateway.responses import ok
from mpp_gateway.service import GatewayService


def request_with(body: bytes, path: str = "/v1/tickets") -> Request:
    environ = EnvironBuilder(
        method="POST", path=path, data=body, content_type="application/json"
    ).get_environ()
    environ["mpp.request_id"] = "req-1"
    return Request(environ)


@pytest.fixture
def gateway():
    service = worker_factory(GatewayService)
    service.config = {}
    service.limiter.hit.return_value = None  # not rate limited
    service.queue_rpc.take_ticket.return_value = {"id": "t-1"}
    service.take_batch.enabled = False  # one RPC per take-ticket (batching: test_take_batch_e2e)
    return service


@pytest.fixture
def counted_loads():
    """Every ``TicketCreateSchema.load`` call, still doing the real load."""
    real = contracts.TicketCreateSchema.load
    with mock.patch.object(
        contracts.TicketCreateSchema, "load", autospec=True, side_effect=real
    ) as spy:
        yield spy


def test_a_valid_body_is_loaded_once_and_the_route_passes_the_loaded_data_on(
    gateway, counted_loads
):
    response = gateway.take_ticket(request_with(b'{"service_id": "svc-1"}'))

    assert response.status_code == 201
    assert counted_loads.call_count == 1
    (sent,) = gateway.queue_rpc.take_ticket.call_args.args
    # the loaded data, defaults filled in by the schema, not the raw JSON
    assert sent["service_id"] == "svc-1"
    assert "priority" in sent and sent["priority"] is None


def test_an_invalid_body_is_refused_by_the_decorator_before_any_service_is_called(
    gateway, counted_loads
):
    response = gateway.take_ticket(request_with(b'{"service_id": "svc-1", "stars": 5}'))

    body = json.loads(response.get_data())
    assert response.status_code == 422
    assert body["error"]["code"] == "VALIDATION_FAILED"
    assert set(body["error"]["details"]) == {"stars"}
    assert body["error"]["request_id"] == "req-1"
    assert counted_loads.call_count == 1
    gateway.queue_rpc.take_ticket.assert_not_called()


def test_malformed_json_is_the_400_envelope_and_no_schema_loads(gateway, counted_loads):
    response = gateway.take_ticket(request_with(b'{"service_id": '))

    assert response.status_code == 400
    assert json.loads(response.get_data())["error"]["code"] == "MALFORMED_JSON"
    assert counted_loads.call_count == 0


class DoublingSchema(Schema):
    count = fields.Integer(required=True)

    @post_load
    def double(self, data, **kwargs):
        return {"count": data["count"] * 2}


def test_the_route_receives_what_its_declared_schema_loaded(monkeypatch):
    monkeypatch.setattr(http, "ROUTES", [])  # the service's route table stays as it is
    seen = []

    class Routes:
        config: dict = {}

        @http.route("POST", "/test/doubling", body=DoublingSchema)
        def doubling(self, request, principal, body):
            seen.append(body)
            return ok(body)

        @http.route("POST", "/test/as-sent", body=DoublingSchema)
        def as_sent(self, request, principal):
            seen.append(http.read_json(request))
            return ok({})

    assert Routes().doubling(request_with(b'{"count": 21}', "/test/doubling")).status_code == 200
    assert Routes().as_sent(request_with(b'{"count": 21}', "/test/as-sent")).status_code == 200
    refused = Routes().as_sent(request_with(b'{"count": "many"}', "/test/as-sent"))

    assert seen == [{"count": 42}, {"count": 21}]  # loaded; as sent (validated all the same)
    assert refused.status_code == 422
    assert set(json.loads(refused.get_data())["error"]["details"]) == {"count"}
