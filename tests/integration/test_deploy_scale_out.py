"""Scale-out proof without Docker: two processes of the queue service and two of the rating
service share one RabbitMQ vhost and one PostgreSQL database each. RabbitMQ's competing consumers
share the work between the replicas (each logs its own workers), and nothing is done twice:
ticket numbers are unique and every completed ticket got exactly one rating invitation."""

from __future__ import annotations

import json
from collections import Counter

import eventlet
import pytest
import requests
from sqlalchemy import create_engine, select

from mpp_queue.adapters.tables import tickets
from mpp_rating.adapters.tables import invitations
from mpp_rating.adapters.tables import metadata as rating_metadata
from tests.support.infra import wait_until
from tests.support.mall import MALL_ADMIN_KEY

pytestmark = [pytest.mark.integration, pytest.mark.e2e, pytest.mark.postgres]

TICKETS = 16


def worker_lines(log: str) -> list[dict]:
    """The per-worker JSON lines (logger ``mpp.worker``) of one process's log."""
    lines = []
    for raw in log.splitlines():
        if raw.startswith("{"):
            try:
                record = json.loads(raw)
            except ValueError:
                continue
            if record.get("logger") == "mpp.worker":
                lines.append(record)
    return lines


def test_two_replicas_of_queue_and_rating_share_the_work_and_do_nothing_twice(mall_factory):
    mall = mall_factory("postgres")
    extra = [mall.start_service("queue"), mall.start_service("rating")]
    for process in extra:
        process.wait_healthy()
    url = mall.url
    admin = {"Authorization": f"Bearer {MALL_ADMIN_KEY}"}

    agency = requests.post(
        f"{url}/v1/agencies", headers=admin, json={"code": "SAMSAT", "name": "Samsat"}
    ).json()
    agency_admin = {"Authorization": f"Bearer {agency['admin_api_key']['key']}"}
    service = requests.post(
        f"{url}/v1/agencies/{agency['id']}/services",
        headers=agency_admin,
        json={"code": "PKB", "name": "Pajak", "fee_idr": 0, "sla_minutes": 30, "prefix": "B"},
    ).json()
    counter = requests.post(
        f"{url}/v1/agencies/{agency['id']}/counters",
        headers=agency_admin,
        json={"name": "Loket 1", "service_ids": [service["id"]]},
    ).json()
    officer = requests.post(
        f"{url}/v1/agencies/{agency['id']}/api-keys",
        headers=agency_admin,
        json={"role": "officer"},
    ).json()
    officer_h = {"Authorization": f"Bearer {officer['key']}"}

    def take(_):
        answer = requests.post(f"{url}/v1/tickets", json={"service_id": service["id"]})
        assert answer.status_code == 201, answer.text
        return answer.json()

    taken = list(eventlet.GreenPool(8).imap(take, range(TICKETS)))  # concurrent kiosks
    numbers = [t["number"] for t in taken]
    assert len(set(numbers)) == TICKETS, f"duplicate ticket numbers: {Counter(numbers)}"

    for _ in range(TICKETS):
        called = requests.post(f"{url}/v1/counters/{counter['id']}/call-next", headers=officer_h)
        assert called.status_code == 200, called.text
        ticket_id = called.json()["id"]
        for action in ("start", "complete"):
            answer = requests.post(f"{url}/v1/tickets/{ticket_id}/{action}", headers=officer_h)
            assert answer.status_code == 200, answer.text

    rating_db = create_engine(mall.db_urls["rating"])
    queue_db = create_engine(mall.db_urls["queue"])

    def invited() -> list:
        with rating_db.connect() as conn:
            return conn.execute(
                select(invitations.c.ticket_id, invitations.c.token).where(
                    invitations.c.token.is_not(None)
                )
            ).all()

    rows = wait_until(lambda: len(invited()) == TICKETS and invited(), timeout=60)
    assert sorted(r.ticket_id for r in rows) == sorted(t["id"] for t in taken)
    assert len({r.token for r in rows}) == TICKETS

    outbox = rating_metadata.tables["outbox"]
    processed = rating_metadata.tables["processed_events"]
    with rating_db.connect() as conn:
        bodies = conn.execute(
            select(outbox.c.body).where(outbox.c.event_type == "rating_invited")
        ).scalars()
        invited_per_ticket = Counter(json.loads(b)["payload"]["ticket_id"] for b in bodies)
        handled = (
            conn.execute(
                select(processed.c.event_id).where(processed.c.handler == "handle_ticket_completed")
            )
            .scalars()
            .all()
        )
    assert set(invited_per_ticket.values()) == {1}, "one rating_invited event per ticket"
    assert len(handled) == len(set(handled)) == TICKETS
    with queue_db.connect() as conn:
        stored = conn.execute(select(tickets.c.number, tickets.c.status)).all()
    assert len(stored) == len({n for n, _ in stored}) == TICKETS
    assert {status for _, status in stored} == {"done"}

    # the work was shared: each replica ran some RPCs (queue) and handled some events (rating)
    logs = {p.log_path.stem: worker_lines(p.log_path.read_text()) for p in mall.processes}
    for replica in ("queue-0", "queue-1"):
        rpcs = [r for r in logs[replica] if r.get("entrypoint") in ("take_ticket", "call_next")]
        assert rpcs, (
            f"{replica} served no ticket RPC: {Counter(r.get('entrypoint') for r in logs[replica])}"
        )
    for replica in ("rating-0", "rating-1"):
        events = [r for r in logs[replica] if r.get("entrypoint") == "handle_ticket_completed"]
        assert events, f"{replica} handled no ticket_completed event"
    # every ticket_completed was applied once by one of them (processed_events above); a worker
    # may apply several, the deliveries at hand (mpp_chassis.batching), so workers <= events
    handled_ok = [
        r
        for replica in ("rating-0", "rating-1")
        for r in logs[replica]
        if r.get("entrypoint") == "handle_ticket_completed" and r.get("outcome") == "ok"
    ]
    assert 2 <= len(handled_ok) <= TICKETS
