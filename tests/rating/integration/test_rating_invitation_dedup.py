"""Over real RabbitMQ: a ticket_completed event delivered twice issues one rating token and one
rating_invited event (the idempotent consumer), on SQLite and PostgreSQL."""

from __future__ import annotations

import json

import pytest
from nameko.standalone.events import event_dispatcher
from sqlalchemy import create_engine, func, select

from mpp_chassis.migrate import upgrade
from mpp_contracts.envelope import make_envelope
from mpp_rating.adapters.tables import invitations, metadata
from tests.rating.interface.conftest import completed_payload, not_required_payload
from tests.support.infra import wait_until
from tests.support.mall import free_port

pytestmark = pytest.mark.integration

outbox = metadata.tables["outbox"]
processed = metadata.tables["processed_events"]


def test_ticket_completed_delivered_twice_issues_one_token(
    container_factory, amqp_uri, db_url_factory
):
    from mpp_rating.service import RatingService

    url = db_url_factory("rating")
    upgrade("rating", url)
    config = {
        "AMQP_URI": amqp_uri,
        "DB_URL": url,
        "WEB_SERVER_ADDRESS": f"127.0.0.1:{free_port()}",
        "OUTBOX_POLL_SECONDS": 0.2,
        "max_workers": 1,  # one worker: events are handled in delivery order
    }
    container_factory(RatingService, config).start()
    dispatch = event_dispatcher({"AMQP_URI": amqp_uri})
    for ticket in ("t-1", "t-2"):  # the payment service's verdict: nothing to pay
        verdict = make_envelope(
            "payment_not_required",
            not_required_payload(ticket, "ag-1"),
            source="payment",
            mall="mpp-test",
        )
        dispatch("payment", "payment_not_required", verdict)
    twice = make_envelope(
        "ticket_completed", completed_payload("t-1", "ag-1"), source="queue", mall="mpp-test"
    )
    dispatch("queue", "ticket_completed", twice)
    dispatch("queue", "ticket_completed", twice)  # a redelivery: same event id
    marker = make_envelope(
        "ticket_completed", completed_payload("t-2", "ag-1"), source="queue", mall="mpp-test"
    )
    dispatch("queue", "ticket_completed", marker)  # handled after both copies

    engine = create_engine(url)
    try:

        def handled() -> bool:
            with engine.connect() as conn:
                return bool(
                    conn.execute(
                        select(invitations.c.token).where(invitations.c.ticket_id == "t-2")
                    ).scalar()
                )

        wait_until(handled, timeout=20, message="both tickets handled")
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
