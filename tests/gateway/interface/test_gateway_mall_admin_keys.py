"""The bootstrap MALL_ADMIN_KEY can be rotated and revoked: a mall admin issues stored mall_admin
keys (POST /v1/api-keys), lists them with the bootstrap key among them, and revokes any of them;
a revoked bootstrap key answers 401 even while it stays configured, across gateway restarts, and
a new configured value (a rotation) works. On SQLite and PostgreSQL, through real HTTP."""

from __future__ import annotations

import pytest

from mpp_chassis.migrate import upgrade
from mpp_gateway.auth import BOOTSTRAP_LABEL
from tests.gateway.interface.conftest import Gateway
from tests.support.mall import free_port

OLD_KEY = "bootstrap-key-before-rotation"
NEW_KEY = "bootstrap-key-after-rotation"


@pytest.fixture(params=["sqlite", "postgres"])
def start_gateway(request, container_factory, gateway_config, pg_url_factory, agencies_stand_in):
    """Start a gateway on one database with a given MALL_ADMIN_KEY; call again to restart."""
    from mpp_gateway.service import GatewayService

    url = gateway_config["DB_URL"]
    if request.param == "postgres":
        url = pg_url_factory("mpp_gateway")
        upgrade("gateway", url)
    running = []

    def start(admin_key: str) -> Gateway:
        for container in running:
            container.stop()
        config = {
            **gateway_config,
            "DB_URL": url,
            "MALL_ADMIN_KEY": admin_key,
            "WEB_SERVER_ADDRESS": f"127.0.0.1:{free_port()}",
        }
        container = container_factory(GatewayService, config)
        container.start()
        running[:] = [container]
        return Gateway(f"http://{config['WEB_SERVER_ADDRESS']}", config)

    return start


def mall_keys(gateway: Gateway, key: str) -> list[dict]:
    answer = gateway.request("GET", "/v1/api-keys", key)
    assert answer.status_code == 200, answer.text
    return answer.json()["items"]


def test_the_bootstrap_key_is_revoked_for_good_and_rotated(start_gateway):
    gateway = start_gateway(OLD_KEY)
    issued = gateway.request("POST", "/v1/api-keys", OLD_KEY, json={"label": "Ibu Sari"})
    assert issued.status_code == 201, issued.text
    admin = issued.json()
    assert admin["role"] == "mall_admin" and admin["agency_id"] is None
    assert admin["scope"] == "mall" and admin["key"].startswith("mpp_")

    listed = mall_keys(gateway, admin["key"])
    (bootstrap,) = [k for k in listed if k["label"] == BOOTSTRAP_LABEL]
    assert bootstrap["id"].startswith("bootstrap-") and bootstrap["revoked_at"] is None
    assert {k["id"] for k in listed} == {bootstrap["id"], admin["id"]}
    assert all("key" not in k for k in listed)
    assert OLD_KEY not in str(listed)

    # the stored key is a full mall admin: it mints an agency_admin key
    agency_admin = gateway.request(
        "POST", "/v1/agencies/agency-a/api-keys", admin["key"], json={"role": "agency_admin"}
    )
    assert agency_admin.status_code == 201, agency_admin.text

    gone = gateway.request("DELETE", f"/v1/api-keys/{bootstrap['id']}", admin["key"])
    assert gone.status_code == 204, gone.text
    refused = gateway.request("GET", "/v1/api-keys", OLD_KEY)
    assert refused.status_code == 401 and refused.json()["error"]["code"] == "UNAUTHORIZED"

    # still configured after a restart, still refused: the revocation is in the database
    gateway = start_gateway(OLD_KEY)
    assert gateway.request("GET", "/v1/api-keys", OLD_KEY).status_code == 401
    assert gateway.request("GET", "/v1/api-keys", admin["key"]).status_code == 200

    # rotation: a new configured value is a new bootstrap key; the old one stays dead
    gateway = start_gateway(NEW_KEY)
    listed = mall_keys(gateway, NEW_KEY)
    bootstraps = {k["id"]: k for k in listed if k["label"] == BOOTSTRAP_LABEL}
    assert len(bootstraps) == 2 and bootstraps[bootstrap["id"]]["revoked_at"] is not None
    (current,) = [k for k in bootstraps.values() if k["revoked_at"] is None]
    assert gateway.request("GET", "/v1/api-keys", OLD_KEY).status_code == 401

    # and the new one can be revoked too; the stored admin key remains
    gone = gateway.request("DELETE", f"/v1/api-keys/{current['id']}", admin["key"])
    assert gone.status_code == 204
    assert gateway.request("GET", "/v1/api-keys", NEW_KEY).status_code == 401
    assert gateway.request("GET", "/v1/api-keys", admin["key"]).status_code == 200


def test_mall_admin_keys_page_with_a_cursor(start_gateway):
    gateway = start_gateway(OLD_KEY)
    issued = {
        gateway.request("POST", "/v1/api-keys", OLD_KEY, json={"label": f"k{i}"}).json()["id"]
        for i in range(3)
    }
    seen, cursor = [], None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        answer = gateway.request("GET", "/v1/api-keys", OLD_KEY, params=params)
        assert answer.status_code == 200, answer.text
        seen += [k["id"] for k in answer.json()["items"]]
        if not (cursor := answer.json()["next_cursor"]):
            break
    assert len(seen) == len(set(seen)) == 4 and issued < set(seen)  # and the bootstrap key
    bad = gateway.request("GET", "/v1/api-keys", OLD_KEY, params={"cursor": "W251bGwsbnVsbF0"})
    assert bad.status_code == 422, bad.text


def test_only_a_mall_admin_manages_mall_admin_keys(start_gateway):
    gateway = start_gateway(OLD_KEY)
    admin = gateway.request("POST", "/v1/api-keys", OLD_KEY, json={}).json()
    agency_admin = gateway.request(
        "POST", "/v1/agencies/agency-a/api-keys", OLD_KEY, json={"role": "agency_admin"}
    ).json()
    officer = gateway.request(
        "POST", "/v1/agencies/agency-a/api-keys", OLD_KEY, json={"role": "officer"}
    ).json()

    for key in (agency_admin["key"], officer["key"]):
        assert gateway.request("POST", "/v1/api-keys", key, json={}).status_code == 403
        assert gateway.request("GET", "/v1/api-keys", key).status_code == 403
        revoke = gateway.request("DELETE", f"/v1/api-keys/{admin['id']}", key)
        assert revoke.status_code == 403
    assert gateway.request("GET", "/v1/api-keys").status_code == 401
    # an agency admin's own route does not reach the mall's keys either
    other = gateway.request(
        "DELETE", f"/v1/agencies/agency-a/api-keys/{admin['id']}", agency_admin["key"]
    )
    assert other.status_code == 404

    # the mall route revokes mall_admin keys only, each once
    assert gateway.request("DELETE", f"/v1/api-keys/{officer['id']}", OLD_KEY).status_code == 404
    assert gateway.request("DELETE", "/v1/api-keys/no-such-key", OLD_KEY).status_code == 404
    assert gateway.request("DELETE", f"/v1/api-keys/{admin['id']}", OLD_KEY).status_code == 204
    assert gateway.request("DELETE", f"/v1/api-keys/{admin['id']}", OLD_KEY).status_code == 404
    assert gateway.request("GET", "/v1/api-keys", admin["key"]).status_code == 401
    bad = gateway.request("POST", "/v1/api-keys", OLD_KEY, json={"role": "mall_admin"})
    assert bad.status_code == 422 and "role" in bad.json()["error"]["details"]


def test_a_mall_admin_key_finds_itself_among_the_listed_keys(start_gateway):
    gateway = start_gateway(OLD_KEY)
    admin = gateway.request("POST", "/v1/api-keys", OLD_KEY, json={"label": "Ibu Sari"}).json()

    mine = gateway.request("GET", "/v1/api-keys/current", admin["key"])
    assert mine.status_code == 200, mine.text
    assert mine.json()["id"] == admin["id"] and mine.json()["label"] == "Ibu Sari"
    assert "key" not in mine.json() and admin["key"] not in mine.text
    bootstrap = gateway.request("GET", "/v1/api-keys/current", OLD_KEY).json()
    assert bootstrap["id"].startswith("bootstrap-") and bootstrap["label"] == BOOTSTRAP_LABEL
    assert bootstrap["id"] in {k["id"] for k in mall_keys(gateway, OLD_KEY)}

    officer = gateway.request(
        "POST", "/v1/agencies/agency-a/api-keys", OLD_KEY, json={"role": "officer"}
    ).json()
    assert gateway.request("GET", "/v1/api-keys/current", officer["key"]).status_code == 403
    assert gateway.request("GET", "/v1/api-keys/current").status_code == 401
    # "current" names no key to revoke
    assert gateway.request("DELETE", "/v1/api-keys/current", OLD_KEY).status_code == 404
