"""Over real RabbitMQ: a ticket_completed event delivered twice issues one rating token and one
rating_invited event (the idempotent consumer), on SQLite and PostgreSQL; and the rating service's
completion queue, bound by an older release to every completion, takes only the ones the queue
routed as free once the service starts (decision 0015)."""

from __future__ import annotations

import json

import pytest
from kombu import Connection, Exchange
from nameko.standalone.events import event_dispatcher
from sqlalchemy import create_engine, func, select

from mpp_chassis.batching import batch_event_handler
from mpp_chassis.migrate import upgrade
from mpp_contracts.envelope import make_envelope
from mpp_rating.adapters.tables import invitations, metadata
from tests.rating.interface.conftest import completed_payload
from tests.support.infra import wait_until
from tests.support.mall import free_port

pytestmark = pytest.mark.integration

outbox = metadata.tables["outbox"]
processed = metadata.tables["processed_events"]


def dispatch_completion(amqp_uri: str, envelope: dict, routing_key: str) -> None:
    """Publish a completion as the queue's relay does: on its exchange, with its routing key."""
    with Connection(amqp_uri) as conn:
        conn.Producer().publish(
            envelope,
            exchange=Exchange("queue.events", type="topic", durable=True),
            routing_key=routing_key,
            serializer="json",
        )


def free_completion(ticket_id: str) -> dict:
    payload = completed_payload(ticket_id, "ag-1", payment_required=False)
    return make_envelope("ticket_completed", payload, source="queue", mall="mpp-test")


def start_rating(container_factory, amqp_uri: str, url: str, service=None):
    from mpp_rating.service import RatingService

    config = {
        "AMQP_URI": amqp_uri,
        "DB_URL": url,
        "WEB_SERVER_ADDRESS": f"127.0.0.1:{free_port()}",
        "OUTBOX_POLL_SECONDS": 0.2,
        "max_workers": 1,  # one worker: events are handled in delivery order
    }
    container = container_factory(service or RatingService, config)
    container.start()
    return container


def token_of(engine, ticket_id: str) -> str | None:
    with engine.connect() as conn:
        return conn.execute(
            select(invitations.c.token).where(invitations.c.ticket_id == ticket_id)
        ).scalar()


def test_ticket_completed_delivered_twice_issues_one_token(
    container_factory, amqp_uri, db_url_factory
):
    url = db_url_factory("rating")
    upgrade("rating", url)
    start_rating(container_factory, amqp_uri, url)
    twice = free_completion("t-1")
    dispatch_completion(amqp_uri, twice, "ticket_completed.free")
    dispatch_completion(amqp_uri, twice, "ticket_completed.free")  # a redelivery: same event id
    # handled after both copies
    dispatch_completion(amqp_uri, free_completion("t-2"), "ticket_completed.free")

    engine = create_engine(url)
    try:
        wait_until(lambda: token_of(engine, "t-2"), timeout=20, message="both tickets handled")
        with engine.connect() as conn:
            tokens = conn.execute(
                select(invitations.c.token).where(invitations.c.ticket_id == "t-1")
            ).all()
            invited = conn.execute(
                select(outbox.c.body).where(outbox.c.event_type == "rating_invited")
            ).scalars()
            invited_tickets = sorted(json.loads(b)["payload"]["ticket_id"] for b in invited)
            claims = conn.execute(
                select(func.count())
                .select_from(processed)
                .where(processed.c.event_id == twice["id"])
            ).scalar_one()
        assert len(tokens) == 1 and tokens[0].token
        assert invited_tickets == ["t-1", "t-2"]  # one invitation per ticket, not two for t-1
        assert claims == 1
    finally:
        engine.dispose()


def test_an_upgraded_rating_service_no_longer_takes_the_completions_payment_decides(
    container_factory, amqp_uri, db_url_factory
):
    """The release before bound the completion queue to ``ticket_completed`` and
    ``ticket_completed.#``; a durable queue keeps its bindings. Started now, the service
    removes them: a completion the payment service decides (routing key ``ticket_completed``)
    no longer reaches it, a free one still does. Before, the paid completion was taken and
    recorded (its invitation waiting for the payment's verdict)."""
    from mpp_rating.service import RatingService

    class OlderRatingService(RatingService):  # the same queue, as the older release bound it
        @batch_event_handler("queue", "ticket_completed", routing_key="ticket_completed.#")
        def handle_ticket_completed(self, events: list[dict]) -> None:
            super().handle_ticket_completed(events)

    url = db_url_factory("rating")
    upgrade("rating", url)
    older = start_rating(container_factory, amqp_uri, url, OlderRatingService)
    older.stop()
    start_rating(container_factory, amqp_uri, url)
    paid = make_envelope(
        "ticket_completed", completed_payload("t-paid", "ag-1"), source="queue", mall="mpp-test"
    )
    event_dispatcher({"AMQP_URI": amqp_uri})("queue", "ticket_completed", paid)
    # published after the paid one, into the same queue had it been routed there
    dispatch_completion(amqp_uri, free_completion("t-free"), "ticket_completed.free")

    engine = create_engine(url)
    try:
        wait_until(lambda: token_of(engine, "t-free"), timeout=20, message="free completion")
        with engine.connect() as conn:
            rows = conn.execute(
                select(invitations.c.ticket_id).where(invitations.c.ticket_id == "t-paid")
            ).all()
        assert rows == []
    finally:
        engine.dispose()
