"""Found 1 of issue 15 at the gateway: the payment simulator's "pay" route is a test double. It
exists only where ``PAYMENT_PROVIDER`` is ``simulator`` (elsewhere it answers like an unknown
path, and the OpenAPI document leaves it out), and there it needs a key."""

from __future__ import annotations

import pytest

from tests.gateway.interface.conftest import ADMIN_KEY, Gateway

PATH = "/v1/simulator/payments/00000000-0000-4000-8000-000000000000/pay"


def start(container_factory, config: dict, provider: str | None) -> Gateway:
    from mpp_gateway.service import GatewayService

    if provider is not None:
        config = {**config, "PAYMENT_PROVIDER": provider}
    container = container_factory(GatewayService, config)
    container.start()
    return Gateway(f"http://{config['WEB_SERVER_ADDRESS']}", config)


@pytest.mark.parametrize("provider", ["midtrans", "xendit", None])
def test_the_simulator_route_is_absent_unless_the_simulator_is_the_provider(
    container_factory, gateway_config, provider
):
    gateway = start(container_factory, gateway_config, provider)
    for key in (None, ADMIN_KEY):
        answer = gateway.request("POST", PATH, key)
        assert answer.status_code == 404, answer.text
        assert answer.json()["error"]["code"] == "ROUTE_NOT_FOUND"
    assert answer.json() | {"error": {**answer.json()["error"], "request_id": None}} == (
        gateway.request("POST", "/v1/no/such/path").json()
        | {"error": {**answer.json()["error"], "request_id": None}}
    )
    paths = gateway.request("GET", "/openapi.json").json()["paths"]
    assert "/v1/simulator/payments/{payment}/pay" not in paths
    assert "/v1/webhooks/payments/{provider}" in paths


def test_where_the_simulator_is_the_provider_its_route_needs_a_key(
    container_factory, gateway_config
):
    gateway = start(container_factory, gateway_config, "simulator")
    anonymous = gateway.request("POST", PATH)
    assert anonymous.status_code == 401 and anonymous.json()["error"]["code"]
    operation = gateway.request("GET", "/openapi.json").json()["paths"][
        "/v1/simulator/payments/{payment}/pay"
    ]["post"]
    assert operation["security"] == [{"apiKey": []}]
    assert operation["description"] == "Roles: mall_admin, agency_admin."
