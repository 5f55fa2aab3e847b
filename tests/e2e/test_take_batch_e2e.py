"""Take-tickets batched at the gateway (issue 20; docs/decisions/0014): citizens pressing the
kiosk at once through the real gateway and queue on PostgreSQL get the numbers, refusals and
events they would get one by one, while the gateway sent the queue fewer RPCs than requests."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
import sqlalchemy as sa
from prometheus_client.parser import text_string_to_metric_families

from tests.support.mall import MALL_ADMIN_KEY

pytestmark = pytest.mark.e2e

QUOTA = 20
CITIZENS = 26  # six past the day's quota
STRANGERS = 3  # a service that does not exist


def bearer(key: str) -> dict:
    return {"Authorization": f"Bearer {key}"}


def queue_calls(url: str) -> dict[str, float]:
    """The queue's ``mpp_entrypoint_calls_total`` by entrypoint (all outcomes)."""
    calls: dict[str, float] = {}
    for family in text_string_to_metric_families(requests.get(url, timeout=5).text):
        for sample in family.samples:
            if sample.name == "mpp_entrypoint_calls_total":
                entrypoint = sample.labels["entrypoint"]
                calls[entrypoint] = calls.get(entrypoint, 0) + sample.value
    return calls


def test_kiosk_presses_at_once_share_rpcs_and_keep_numbers_quota_and_events(mall_factory):
    mall = mall_factory("postgres", {"GATEWAY_TAKE_BATCH_MS": "50"})
    admin = bearer(MALL_ADMIN_KEY)
    agency = requests.post(
        f"{mall.url}/v1/agencies", headers=admin, json={"code": "SAMSAT", "name": "Samsat"}
    ).json()
    service = requests.post(
        f"{mall.url}/v1/agencies/{agency['id']}/services",
        headers=bearer(agency["admin_api_key"]["key"]),
        json={
            "code": "PKB",
            "name": "Pajak Kendaraan",
            "fee_idr": 0,
            "sla_minutes": 30,
            "prefix": "K",
            "daily_quota": QUOTA,
        },
    )
    assert service.status_code == 201, service.text
    queue = next(p for p in mall.processes if p.name == "queue")
    metrics_url = f"http://127.0.0.1:{queue.port}/metrics"
    before = queue_calls(metrics_url)

    bodies = [{"service_id": service.json()["id"]}] * CITIZENS
    bodies += [{"service_id": "00000000-0000-0000-0000-000000000000"}] * STRANGERS
    start = threading.Barrier(len(bodies))

    def press(body: dict) -> requests.Response:
        start.wait(timeout=30)
        return requests.post(f"{mall.url}/v1/tickets", json=body, timeout=30)

    with ThreadPoolExecutor(len(bodies)) as pool:
        answers = list(pool.map(press, bodies))

    issued = [a for a in answers if a.status_code == 201]
    assert sorted(a.json()["number"] for a in issued) == [f"K-{n:03d}" for n in range(1, 21)]
    refused = sorted((a.status_code, a.json()["error"]["code"]) for a in answers if a not in issued)
    quota = [(409, "QUOTA_EXHAUSTED")] * (CITIZENS - QUOTA)
    assert refused == sorted(quota + [(404, "SERVICE_NOT_FOUND")] * STRANGERS), refused

    calls = queue_calls(metrics_url)
    batches = calls.get("take_tickets", 0) - before.get("take_tickets", 0)
    alone = calls.get("take_ticket", 0) - before.get("take_ticket", 0)
    assert batches >= 1, calls
    assert batches + alone < len(bodies), "the gateway sent fewer RPCs than requests"

    # each ticket's event carries the id of the HTTP request that took it, not its batch's
    engine = sa.create_engine(mall.db_urls["queue"])
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                sa.text(
                    "SELECT body::json->'payload'->>'number', correlation_id FROM outbox "
                    "WHERE event_type = 'ticket_issued'"
                )
            ).all()
    finally:
        engine.dispose()
    assert dict(rows) == {a.json()["number"]: a.headers["X-Request-ID"] for a in issued}
