"""One real gateway container (web server on a free port, its own SQLite database, a fresh
RabbitMQ vhost); the services behind it are absent unless a test starts stand-ins."""

from __future__ import annotations

import uuid

import pytest
import requests

from mpp_chassis.messaging import rpc
from mpp_chassis.migrate import upgrade
from mpp_contracts.errors import EXPECTED_ERRORS, NotFound
from tests.support.mall import free_port

ADMIN_KEY = "interface-mall-admin-key"
MISSING_AGENCY = "missing-agency"


class AgenciesStandIn:
    """The queue's ``get_agency`` alone (the gateway asks it before issuing a key): every
    agency exists but :data:`MISSING_AGENCY`."""

    name = "queue"

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def get_agency(self, agency_id: str) -> dict:
        if agency_id == MISSING_AGENCY:
            raise NotFound("AGENCY_NOT_FOUND", f"agency {agency_id} not found")
        return {"id": agency_id, "code": agency_id.upper()[:16], "name": agency_id}


class Gateway:
    def __init__(self, url: str, config: dict) -> None:
        self.url = url
        self.config = config
        self.http = requests.Session()

    def request(self, method: str, path: str, key: str | None = None, **kwargs):
        headers = kwargs.pop("headers", {})
        if key:
            headers["Authorization"] = f"Bearer {key}"
        return self.http.request(method, self.url + path, headers=headers, timeout=15, **kwargs)


@pytest.fixture
def gateway_config(amqp_uri, tmp_path) -> dict:
    url = f"sqlite:///{tmp_path}/gateway.db"
    upgrade("gateway", url)
    return {
        "AMQP_URI": amqp_uri,
        "WEB_SERVER_ADDRESS": f"127.0.0.1:{free_port()}",
        "DB_URL": url,
        "MALL_ID": "mpp-test",
        "RPC_TIMEOUT": 1,
        "MALL_ADMIN_KEY": ADMIN_KEY,
        "CORS_ORIGINS": "https://kiosk.example",
        "REDIS_URL": "redis://127.0.0.1:6379/0",
        "REDIS_PREFIX": f"mpp-test-{uuid.uuid4().hex[:8]}",
        "RATE_LIMIT_PER_MINUTE": 1000,
        "RATE_LIMIT_PUBLIC_PER_MINUTE": 1000,
        "DISPLAY_HEARTBEAT_SECONDS": 0.5,
        "max_workers": 10,
    }


@pytest.fixture
def agencies_stand_in(container_factory, gateway_config):
    """Start :class:`AgenciesStandIn` on the gateway's vhost (tests that issue API keys)."""
    container = container_factory(AgenciesStandIn, gateway_config)
    container.start()
    return container


@pytest.fixture
def gateway(container_factory, gateway_config) -> Gateway:
    from mpp_gateway.service import GatewayService

    container = container_factory(GatewayService, gateway_config)
    container.start()
    return Gateway(f"http://{gateway_config['WEB_SERVER_ADDRESS']}", gateway_config)
