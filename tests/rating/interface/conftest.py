"""One real rating container with its real database (SQLite and PostgreSQL) on a fresh vhost,
driven through its entry points; other services are replaced by the events they would send."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from nameko.testing.services import entrypoint_hook
from sqlalchemy import create_engine

from mpp_chassis.migrate import upgrade
from mpp_contracts.envelope import make_envelope, read_envelope
from tests.support.mall import free_port


def envelope(event_type: str, payload: dict, source: str = "queue") -> dict:
    """What a handler receives: a loaded envelope, as after RabbitMQ."""
    return read_envelope(make_envelope(event_type, payload, source=source, mall="mpp-test"))


def completed_payload(ticket_id: str, agency_id: str, **overrides) -> dict:
    now = datetime.now(UTC)
    payload = {
        "ticket_id": ticket_id,
        "journey_id": ticket_id,
        "number": "A-001",
        "agency_id": agency_id,
        "service_id": overrides.pop("service_id", f"svc-{agency_id}"),
        "service_code": "KTP",
        "issued_at": now,
        "counter_id": "counter-1",
        "officer_id": "officer-1",
        "fee_idr": 0,
        "called_at": now,
        "started_at": now,
        "completed_at": now,
        "waiting_seconds": 60,
        "serving_seconds": 120,
    }
    payload.update(overrides)
    return payload


def not_required_payload(ticket_id: str, agency_id: str, **overrides) -> dict:
    """The payment service's verdict that the ticket owes nothing."""
    return {
        "ticket_id": ticket_id,
        "agency_id": agency_id,
        "service_id": overrides.pop("service_id", f"svc-{agency_id}"),
    }


class Rating:
    """Handles on the container: ``call(name, *args)`` runs one entry point; ``db`` is an engine."""

    def __init__(self, container, url: str) -> None:
        self.container = container
        self.db = create_engine(url)

    def call(self, entrypoint: str, *args):
        with entrypoint_hook(self.container, entrypoint) as hook:
            return hook(*args)

    def complete(self, ticket_id: str, agency_id: str, **overrides) -> str:
        """Deliver ticket_completed and the payment service's payment_not_required (a free
        service) and return the token they issued."""
        from sqlalchemy import select

        from mpp_rating.adapters.tables import invitations

        service = {"service_id": overrides["service_id"]} if "service_id" in overrides else {}
        self.call(
            "handle_ticket_completed",
            [envelope("ticket_completed", completed_payload(ticket_id, agency_id, **overrides))],
        )
        self.call(
            "handle_payment_not_required",
            [
                envelope(
                    "payment_not_required",
                    not_required_payload(ticket_id, agency_id, **service),
                    "payment",
                )
            ],
        )
        with self.db.connect() as conn:
            return conn.execute(
                select(invitations.c.token).where(invitations.c.ticket_id == ticket_id)
            ).scalar_one()


@pytest.fixture
def rating_url(db_url_factory) -> str:
    url = db_url_factory("rating")
    upgrade("rating", url)
    return url


@pytest.fixture
def rating(container_factory, amqp_uri, rating_url):
    from mpp_rating.service import RatingService

    config = {
        "AMQP_URI": amqp_uri,
        "DB_URL": rating_url,
        "WEB_SERVER_ADDRESS": f"127.0.0.1:{free_port()}",
        "MALL_ID": "mpp-test",
        "MALL_TIMEZONE": "Asia/Jakarta",
        "RATING_TOKEN_DAYS": 7,
        "OUTBOX_POLL_SECONDS": 0.2,
    }
    container = container_factory(RatingService, config)
    container.start()
    handle = Rating(container, rating_url)
    yield handle
    handle.db.dispose()
