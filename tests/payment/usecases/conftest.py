"""A real payment database (SQLite and PostgreSQL) driven through the use-case functions, one
transaction per call as the entry points do: no nameko container, no broker."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from mpp_chassis.migrate import upgrade
from mpp_payment.adapters.tables import metadata
from mpp_payment.usecases import Settings
from tests.support.usecases import UseCases

ADMIN = {"role": "agency_admin", "agency_id": "agency-1", "key_id": "key-admin-1"}


@pytest.fixture
def till(db_url_factory):
    url = db_url_factory("payment")
    upgrade("payment", url)
    desk = UseCases(url, metadata, "payment")
    desk.settings = Settings(simulator_secret="usecases-secret")
    yield desk
    desk.dispose()


def completed_ticket(service_id: str = "svc-1", fee_idr: int = 50000) -> dict:
    """What the queue's ticket_completed carries (the fee the ticket was issued with)."""
    now = datetime.now(UTC)
    ticket_id = str(uuid.uuid4())
    return {
        "ticket_id": ticket_id,
        "journey_id": ticket_id,
        "number": "P-001",
        "agency_id": "agency-1",
        "service_id": service_id,
        "service_code": "PASPOR",
        "issued_at": now,
        "fee_idr": fee_idr,
        "counter_id": "counter-1",
        "officer_id": "officer-1",
        "completed_at": now,
    }


def plugged(service_id: str = "svc-1", fee_idr: int = 50000, version: int = 1) -> dict:
    """What the queue's service_plugged / service_updated carries."""
    return {
        "service_id": service_id,
        "agency_id": "agency-1",
        "code": "PASPOR",
        "name": "Paspor",
        "fee_idr": fee_idr,
        "active": True,
        "version": version,
    }
