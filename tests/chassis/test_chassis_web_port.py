"""A service's HTTP port is its own: a second process started on a taken port fails to start,
instead of silently sharing the port's connections with the first (``SO_REUSEPORT``)."""

from __future__ import annotations

import errno

import pytest
import requests

from mpp_chassis.web import http, json_response
from tests.support.mall import free_port


class First:
    name = "port_first"

    @http("GET", "/who")
    def who(self, request):
        return json_response({"service": "first"})


class Second:
    name = "port_second"

    @http("GET", "/other")
    def other(self, request):
        return json_response({"service": "second"})


def test_a_second_service_on_a_taken_port_fails_to_start(container_factory, amqp_uri):
    """Found from outside: a test mall's gateway and one of its services were handed the same
    port; both bound it, and the kernel gave half the gateway's requests to the service, which
    answered ``POST /v1/agencies`` with an HTML 404."""
    address = f"127.0.0.1:{free_port()}"
    config = {"AMQP_URI": amqp_uri, "WEB_SERVER_ADDRESS": address}
    container_factory(First, config).start()

    second = container_factory(Second, config)
    with pytest.raises(OSError) as refused:
        second.start()
    assert refused.value.errno == errno.EADDRINUSE

    # every connection still reaches the first service
    for _ in range(20):
        assert requests.get(f"http://{address}/who", timeout=5).json() == {"service": "first"}
