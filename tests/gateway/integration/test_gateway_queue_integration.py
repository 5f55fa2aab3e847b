"""The gateway with the real queue service behind it, over real RabbitMQ (no stand-in): HTTP
requests become the queue's RPCs and its answers, remote errors arrive as the same contract
errors and keep their status and code, and a call made at a counter reaches an open display
stream as the queue's ticket_called event, broadcast to the gateway."""

from __future__ import annotations

import pytest

from mpp_chassis.migrate import upgrade
from tests.gateway.interface.conftest import ADMIN_KEY
from tests.gateway.interface.test_gateway_display_stream import Stream
from tests.support.infra import wait_until
from tests.support.mall import free_port

pytestmark = pytest.mark.integration


@pytest.fixture
def queue_service(container_factory, gateway_config, db_url_factory):
    from mpp_queue.service import QueueService

    url = db_url_factory("queue")
    upgrade("queue", url)
    config = {
        "AMQP_URI": gateway_config["AMQP_URI"],
        "DB_URL": url,
        "WEB_SERVER_ADDRESS": f"127.0.0.1:{free_port()}",
        "MALL_ID": "mpp-test",
        "NIK_HASH_KEY": "integration-key",
        "OUTBOX_POLL_SECONDS": 0.2,
    }
    container = container_factory(QueueService, config)
    container.start()
    return container


def created(answer) -> dict:
    assert answer.status_code == 201, answer.text
    return answer.json()


def test_a_morning_through_the_gateway_and_the_real_queue(queue_service, gateway):
    agency = created(
        gateway.request(
            "POST", "/v1/agencies", ADMIN_KEY, json={"code": "SAMSAT", "name": "Samsat"}
        )
    )
    admin = agency["admin_api_key"]["key"]
    service = created(
        gateway.request(
            "POST",
            f"/v1/agencies/{agency['id']}/services",
            admin,
            json={
                "code": "STNK",
                "name": "Perpanjang STNK",
                "fee_idr": 0,
                "sla_minutes": 30,
                "prefix": "S",
            },
        )
    )
    counter = created(
        gateway.request(
            "POST",
            f"/v1/agencies/{agency['id']}/counters",
            admin,
            json={"name": "Loket 1", "service_ids": [service["id"]]},
        )
    )
    keys = f"/v1/agencies/{agency['id']}/api-keys"
    officer = created(gateway.request("POST", keys, admin, json={"role": "officer"}))["key"]
    board_key = created(gateway.request("POST", keys, admin, json={"role": "display"}))["key"]
    board = Stream(gateway, board_key)
    try:
        ticket = created(gateway.request("POST", "/v1/tickets", json={"service_id": service["id"]}))
        assert ticket["number"] == "S-001"

        called = gateway.request("POST", f"/v1/counters/{counter['id']}/call-next", officer)

        assert called.status_code == 200, called.text
        assert called.json()["id"] == ticket["id"]
        calls = wait_until(board.data, timeout=15, message="ticket_called on the board")
        assert [(c["number"], c["counter_name"]) for c in calls] == [("S-001", "Loket 1")]
    finally:
        board.close()

    # the queue's own errors, through RabbitMQ, in the gateway's envelope
    missing = gateway.request(
        "PATCH", f"/v1/agencies/{agency['id']}/services/no-such-service", admin, json={"name": "Xx"}
    )
    assert missing.status_code == 404, missing.text
    assert missing.json()["error"]["code"] == "SERVICE_NOT_FOUND"
    again = gateway.request(
        "POST",
        f"/v1/agencies/{agency['id']}/services",
        admin,
        json={"code": "STNK", "name": "Duplicate", "fee_idr": 0, "sla_minutes": 30, "prefix": "D"},
    )
    assert again.status_code == 409, again.text
