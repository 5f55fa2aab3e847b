"""A handler that keeps failing ends in the dead-letter queue after bounded redeliveries; once the
cause is fixed, ``mpp_chassis.dlq`` replays it and the event is applied once — even when the
replay is delivered twice (a replay that crashed between its publish and its ack)."""

from __future__ import annotations

import json

import pytest
import requests
import sqlalchemy as sa
from kombu import Connection, Producer

from bench.floor import open_floor
from mpp_chassis import dlq
from tests.support.infra import queue_info, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]


def scalar(url: str, sql: str, **params):
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            result = conn.execute(sa.text(sql), params)
            return result.scalar() if result.returns_rows else None
    finally:
        engine.dispose()


def test_chaos_dead_letter_replayed_once(mall_factory, amqp_uri, vhost):
    mall = mall_factory("postgres", extra_env={"EVENT_RETRY_DELAYS": "0.2,0.2"})
    rating_db = mall.db_urls["rating"]
    floor = open_floor(mall.url)
    floor.add_service("DLQ", "Q", fee_idr=0, counters=1)
    officer, counter = floor.officer, floor.counters["DLQ"][0]
    # payment's terms for the free service reach the queue: its completion is then routed past
    # payment (decision 0013), so the completion is the one fact the invitation waits for.
    # Completing before they arrive routes it through payment instead, a race this test avoids.
    wait_until(
        lambda: (
            scalar(
                mall.db_urls["queue"],
                "SELECT payment_terms_version FROM services WHERE id = :s",
                s=floor.services["DLQ"],
            )
            is not None
        ),
        timeout=30,
        message="payment's terms at the queue",
    )
    taken = requests.post(
        f"{mall.url}/v1/tickets", json={"service_id": floor.services["DLQ"]}, timeout=10
    ).json()
    ticket, code = taken["id"], {"code": taken["access_code"]}
    assert (
        requests.post(
            f"{mall.url}/v1/counters/{counter}/call-next", headers=officer, timeout=10
        ).json()["id"]
        == ticket
    )

    # the fault: the rating service's invitations table is gone while the ticket completes
    scalar(rating_db, "ALTER TABLE invitations RENAME TO invitations_away")
    try:
        for action in ("start", "complete"):
            answer = requests.post(
                f"{mall.url}/v1/tickets/{ticket}/{action}", headers=officer, timeout=10
            )
            assert answer.status_code == 200, answer.text
        # the fact the invitation needs fails: the completion, routed as free
        facts = ("ticket_completed",)

        def dead_lettered() -> dict[str, dict]:
            found = {
                d["type"]: d for d in dlq.list_letters(amqp_uri) if "rating" in (d["queue"] or "")
            }
            return found if set(facts) <= set(found) else {}

        letters = wait_until(
            dead_lettered,
            timeout=60,
            interval=0.5,
            message="the completion dead-lettered by the rating service",
        )
        letter = letters["ticket_completed"]
        details = dlq.show_letter(amqp_uri, letter["id"])
    finally:
        scalar(rating_db, "ALTER TABLE invitations_away RENAME TO invitations")
    assert details["body"]["payload"]["ticket_id"] == ticket
    assert scalar(rating_db, "SELECT count(*) FROM invitations WHERE ticket_id = :t", t=ticket) == 0

    replayed = dlq.replay(amqp_uri, [letters[fact]["id"] for fact in facts])
    assert sorted(replayed) == sorted((letters[f]["id"], letters[f]["queue"]) for f in facts)
    wait_until(
        lambda: requests.get(f"{mall.url}/v1/tickets/{ticket}", params=code, timeout=10).json()[
            "rating"
        ],
        timeout=30,
        message="the replayed event invited a rating",
    )

    # the same event delivered again: the consumer has claimed its id, nothing happens twice
    with Connection(amqp_uri) as conn:
        Producer(conn.channel()).publish(
            json.dumps(details["body"]),
            exchange="",
            routing_key=letter["queue"],
            content_type="application/json",
            message_id=details["properties"]["message_id"],
            delivery_mode=2,
        )
    wait_until(
        lambda: (
            queue_info(vhost, letter["queue"]).get("messages", 1) == 0
            and queue_info(vhost, letter["queue"]).get("messages_unacknowledged", 1) == 0
        ),
        timeout=30,
        interval=0.2,
        message="the duplicate was consumed",
    )
    assert scalar(rating_db, "SELECT count(*) FROM invitations WHERE ticket_id = :t", t=ticket) == 1
    invited = scalar(
        rating_db,
        "SELECT count(*) FROM outbox WHERE event_type = 'rating_invited' AND body LIKE :p",
        p=f'%"ticket_id": "{ticket}"%',
    )
    assert invited == 1
    assert dlq.list_letters(amqp_uri) == []
