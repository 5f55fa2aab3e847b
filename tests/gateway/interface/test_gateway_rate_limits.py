"""Rate limits that hold, through real HTTP: counted in the process when Redis is away (or not
configured), per forwarded client behind trusted proxies only, and on failed authentication
before the key lookup."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa

from tests.gateway.interface.conftest import ADMIN_KEY, Gateway
from tests.gateway.interface.test_gateway_http_surface import assert_envelope
from tests.support.mall import free_port

KEYS = "/v1/agencies/a/api-keys"


def start(container_factory, config: dict) -> Gateway:
    from mpp_gateway.service import GatewayService

    container_factory(GatewayService, config).start()
    return Gateway(f"http://{config['WEB_SERVER_ADDRESS']}", config)


# -- without Redis ------------------------------------------------------------------


def metric(gateway: Gateway, name: str) -> float:
    text = gateway.request("GET", "/metrics").text
    found = re.search(rf"^{name} ([0-9.e+]+)$", text, re.M)
    return float(found.group(1)) if found else 0.0


@pytest.mark.parametrize("redis_url", ["closed-port", ""])
def test_limits_hold_in_the_process_when_redis_is_away(
    container_factory, gateway_config, redis_url
):
    gateway_config.update(
        REDIS_URL=f"redis://127.0.0.1:{free_port()}/0" if redis_url else "",
        RATE_LIMIT_PER_MINUTE=3,
        RATE_LIMIT_PUBLIC_PER_MINUTE=2,
    )
    gw = start(container_factory, gateway_config)
    before = metric(gw, "mpp_rate_limiter_fallback_total")
    keyed = [gw.request("GET", KEYS, ADMIN_KEY).status_code for _ in range(5)]
    assert keyed == [200, 200, 200, 429, 429]
    limited = gw.request("GET", KEYS, ADMIN_KEY)
    assert_envelope(limited, 429, "RATE_LIMITED")
    assert 1 <= int(limited.headers["Retry-After"]) <= 60
    public = [gw.request("GET", "/v1/agencies").status_code for _ in range(4)]
    assert 429 not in public[:2] and public[2:] == [429, 429]
    assert metric(gw, "mpp_rate_limiter_fallback_total") >= before + 10
    assert metric(gw, "mpp_rate_limiter_degraded") == 1.0


# -- trusted proxies ----------------------------------------------------------------------------


def test_behind_a_trusted_proxy_each_forwarded_client_has_its_own_budget(
    container_factory, gateway_config
):
    gateway_config.update(RATE_LIMIT_PUBLIC_PER_MINUTE=2, TRUSTED_PROXIES="10.0.0.0/8, 127.0.0.1")

    gw = start(container_factory, gateway_config)

    def status(forwarded):
        return gw.request("GET", "/v1/agencies", headers={"X-Forwarded-For": forwarded}).status_code

    assert [status("203.0.113.5") for _ in range(3)][2] == 429
    # another citizen behind the same ingress is not limited by the first
    assert status("203.0.113.6") != 429
    # what the client wrote on the left of the header does not move it to a new bucket
    assert status("198.51.100.77, 203.0.113.5") == 429
    assert status("garbage, 203.0.113.5, 10.1.2.3") == 429  # two proxies in the chain


def test_a_forwarded_header_from_an_untrusted_peer_changes_nothing(
    container_factory, gateway_config
):
    gateway_config.update(RATE_LIMIT_PUBLIC_PER_MINUTE=2, TRUSTED_PROXIES="10.0.0.0/8")
    gw = start(container_factory, gateway_config)
    statuses = [
        gw.request("GET", "/v1/agencies", headers={"X-Forwarded-For": f"203.0.113.{i}"})
        for i in range(3)
    ]
    assert statuses[2].status_code == 429


# -- failed authentication ----------------------------------------------------------------------


def test_failed_authentications_are_limited_before_the_key_lookup(
    container_factory, gateway_config
):
    gateway_config.update(RATE_LIMIT_AUTH_FAILURES_PER_MINUTE=3)
    gw = start(container_factory, gateway_config)
    first = [gw.request("GET", KEYS, f"mpp_wrong_{i}").status_code for i in range(3)]
    assert first == [401, 401, 401]
    # the known (bootstrap) key of the same address is not locked out by the flood
    assert gw.request("GET", KEYS, ADMIN_KEY).status_code == 200
    # the lookup is not reached any more: with the keys' table gone it would fail
    engine = sa.create_engine(gateway_config["DB_URL"])
    with engine.begin() as conn:
        conn.execute(sa.text("DROP TABLE api_keys"))
    engine.dispose()
    flood = gw.request("GET", KEYS, "mpp_wrong_again")
    error = assert_envelope(flood, 429, "RATE_LIMITED")
    assert error["details"]["limit"] == 3
    assert 1 <= int(flood.headers["Retry-After"]) <= 60
    assert_envelope(gw.request("GET", KEYS), 429, "RATE_LIMITED")  # no key at all: the same
