"""``take_tickets``, the queue's batched take-ticket (what a gateway process sends for the kiosk
presses that reach it at once; docs/decisions/0014), through the real service on PostgreSQL:
the 50 requests of the group-commit test in batches give the same numbers, refusals and events
as the same 50 one at a time, each event carries its own request's correlation id, and a
malformed batch is refused whole; a database that does not answer is each item's 503."""

from __future__ import annotations

import json
import uuid

import pytest
from nameko.exceptions import deserialize
from nameko.standalone.rpc import ClusterRpcProxy
from sqlalchemy import select

from mpp_contracts.errors import ServiceUnavailable, ValidationFailed
from tests.queue.interface.test_queue_group_commit_pg import outcome, plan, start_queue, summary
from tests.queue.usecases.conftest import OUTBOX
from tests.support.mall import free_port

pytestmark = pytest.mark.postgres

BATCH = 10


class Answer:
    """One item's answer in the shape ``outcome`` reads (a reply's ``result()``)."""

    def __init__(self, answer: dict) -> None:
        self.answer = answer

    def result(self) -> dict:
        if "error" in self.answer:
            raise deserialize(self.answer["error"])
        return self.answer["ticket"]


def test_batches_give_what_one_at_a_time_gives(container_factory, amqp_uri, pg_url_factory):
    requests = plan()
    batched, batched_floor, ids = start_queue(
        container_factory, amqp_uri, pg_url_factory, "batched", window_ms=2
    )
    items = [
        {
            "data": {"service_id": ids[line], **body},
            "request_key": key,
            "correlation_id": str(uuid.uuid4()),
        }
        for line, body, key in requests
    ]
    with ClusterRpcProxy(batched.config) as cluster:
        # one batch after another, as a gateway process sends them: in a batch, the quota goes
        # to the items in their order, as it goes to single requests in theirs
        answers = [
            answer
            for i in range(0, len(items), BATCH)
            for answer in cluster.queue.take_tickets(items[i : i + BATCH])
        ]
        with pytest.raises(ValidationFailed):
            cluster.queue.take_tickets({"data": {}})  # not a list: the whole call is refused
    assert len(answers) == len(items)
    in_batches = [outcome(Answer(answer)) for answer in answers]
    with batched_floor.engine.connect() as conn:
        bodies = conn.execute(select(OUTBOX.c.body).order_by(OUTBOX.c.seq)).scalars().all()
    issued = [e for e in map(json.loads, bodies) if e["type"] == "ticket_issued"]
    batched.stop()

    sequential, sequential_floor, ids = start_queue(
        container_factory, amqp_uri, pg_url_factory, "single", window_ms=0
    )
    with ClusterRpcProxy(sequential.config) as cluster:
        one_by_one = [
            outcome(cluster.queue.take_ticket.call_async({"service_id": ids[line], **body}, key))
            for line, body, key in requests
        ]
    assert summary(in_batches, batched_floor) == summary(one_by_one, sequential_floor)

    # each ticket's event carries the correlation id of the item that took it
    by_number: dict[str, str] = {}  # the keyed twin's replay answers its first's ticket
    for item, answer in zip(items, answers, strict=True):
        if "ticket" in answer:
            by_number.setdefault(answer["ticket"]["number"], item["correlation_id"])
    assert {e["payload"]["number"]: e["correlation_id"] for e in issued} == by_number


def test_a_database_that_does_not_answer_is_each_items_503_not_a_500(container_factory, amqp_uri):
    from mpp_queue.service import QueueService

    config = {
        "AMQP_URI": amqp_uri,
        "DB_URL": f"postgresql://postgres@127.0.0.1:{free_port()}/nowhere",  # nothing listens
        "WEB_SERVER_ADDRESS": f"127.0.0.1:{free_port()}",
        "NIK_HASH_KEY": "group-key",
        "OUTBOX_POLL_SECONDS": 60,
    }
    container = container_factory(QueueService, config)
    container.start()
    item = {"data": {"service_id": str(uuid.uuid4())}, "request_key": None}
    with ClusterRpcProxy(config) as cluster:
        answers = cluster.queue.take_tickets([item, {**item, "correlation_id": "c-2"}])
    errors = [deserialize(answer["error"]) for answer in answers]
    assert [(type(e), e.code) for e in errors] == [(ServiceUnavailable, "DATABASE_UNAVAILABLE")] * 2
