"""The outbox proof: tickets issued while RabbitMQ is unreachable are all delivered once it is
back, and every event is applied exactly once by an idempotent consumer, even when published
twice."""

from __future__ import annotations

from urllib.parse import urlparse, urlunparse

import pytest
from nameko.dependency_providers import Config
from nameko.testing.services import dummy, entrypoint_hook
from sqlalchemy import Column, Integer, MetaData, String, Table, create_engine, func, insert, select
from sqlalchemy import update as sa_update

from mpp_chassis.db import Database
from mpp_chassis.messaging import event_handler
from mpp_chassis.migrate import upgrade
from mpp_chassis.tables import add_chassis_tables
from mpp_queue import usecases
from mpp_queue.adapters.tables import metadata as queue_metadata
from tests.support.infra import wait_until
from tests.support.proxy import TcpProxy

pytestmark = pytest.mark.integration

audit_metadata = MetaData()
applied = Table(
    "applied",
    audit_metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("ticket_id", String(36), nullable=False),
)
add_chassis_tables(audit_metadata)


class AuditService:
    """A consumer that records every ticket_issued it applies (idempotently)."""

    name = "audit"
    uow = Database(audit_metadata)

    @event_handler("queue", "ticket_issued")
    def handle_ticket_issued(self, event: dict) -> None:
        if self.uow.claim_event(event["id"], "handle_ticket_issued"):
            self.uow.session.execute(
                insert(applied).values(ticket_id=event["payload"]["ticket_id"])
            )
            self.uow.commit()


class QueueProducer:
    """The queue service's real use cases and outbox, reached without the broker (entry point
    hooks), so only the outbox relay needs RabbitMQ — through the proxy the test cuts."""

    name = "queue"
    config = Config()
    uow = Database(queue_metadata)

    @dummy
    def setup_catalogue(self) -> str:
        agency = usecases.register_agency(self.uow, {"code": "DUKCAPIL", "name": "Dukcapil"})
        service = usecases.plug_service(
            self.uow,
            agency["id"],
            {"code": "KTP", "name": "KTP-el", "fee_idr": 0, "sla_minutes": 30, "prefix": "A"},
        )
        self.uow.commit()
        return service["id"]

    @dummy
    def take_ticket(self, service_id: str) -> str:
        ticket = usecases.take_ticket(self.uow, usecases.Settings(), {"service_id": service_id})
        self.uow.commit()
        return ticket["id"]


def _via(proxy: TcpProxy, amqp_uri: str) -> str:
    parsed = urlparse(amqp_uri)
    netloc = f"{parsed.username}:{parsed.password}@127.0.0.1:{proxy.port}"
    return urlunparse(parsed._replace(netloc=netloc))


@pytest.fixture
def proxy(amqp_uri):
    parsed = urlparse(amqp_uri)
    proxy = TcpProxy(parsed.hostname, parsed.port or 5672)
    yield proxy
    proxy.close()


def test_events_issued_while_the_broker_is_unreachable_are_delivered_once(
    container_factory, amqp_uri, proxy, db_url_factory
):
    queue_db, audit_db = db_url_factory("queue"), db_url_factory("audit")
    upgrade("queue", queue_db)
    audit_metadata.create_all(create_engine(audit_db))

    audit = container_factory(AuditService, {"AMQP_URI": amqp_uri, "DB_URL": audit_db})
    audit.start()
    producer = container_factory(
        QueueProducer,
        {"AMQP_URI": _via(proxy, amqp_uri), "DB_URL": queue_db, "OUTBOX_POLL_SECONDS": 0.2},
    )
    producer.start()
    audit_engine, queue_engine = create_engine(audit_db), create_engine(queue_db)
    outbox = queue_metadata.tables["outbox"]

    def applied_count() -> int:
        with audit_engine.connect() as conn:
            return conn.execute(select(func.count()).select_from(applied)).scalar_one()

    def unsent_tickets() -> int:
        with queue_engine.connect() as conn:
            return conn.execute(
                select(func.count())
                .select_from(outbox)
                .where(outbox.c.sent_at.is_(None), outbox.c.event_type == "ticket_issued")
            ).scalar_one()

    with entrypoint_hook(producer, "setup_catalogue") as setup_catalogue:
        service_id = setup_catalogue()
    issued: list[str] = []
    with entrypoint_hook(producer, "take_ticket") as take_ticket:
        issued += [take_ticket(service_id) for _ in range(5)]
        wait_until(lambda: applied_count() == 5, message="first tickets applied")

        proxy.cut()  # the broker is now unreachable for the producer
        issued += [take_ticket(service_id) for _ in range(20)]
        database = next(e for e in producer.dependencies if isinstance(e, Database))
        wait_until(lambda: database.relay.failures >= 2, timeout=60, message="relay failures")
        assert unsent_tickets() == 20, "nothing may be marked sent while the broker is away"
        assert applied_count() == 5
        assert proxy.refused >= 1, "the relay really tried to reach the broker"

        proxy.restore()
        wait_until(lambda: applied_count() == 25, timeout=90, message="backlog delivered")
        wait_until(lambda: unsent_tickets() == 0, timeout=30, message="outbox drained")

    # a relay that died after the broker's confirm but before marking the row publishes again:
    with queue_engine.begin() as conn:
        conn.execute(
            sa_update(outbox).where(outbox.c.event_type == "ticket_issued").values(sent_at=None)
        )
    wait_until(lambda: unsent_tickets() == 0, timeout=30, message="republished")
    processed = audit_metadata.tables["processed_events"]
    wait_until(lambda: _count(audit_engine, processed) == 25, message="every event recorded once")
    with audit_engine.connect() as conn:
        rows = conn.execute(select(applied.c.ticket_id)).scalars().all()
    assert sorted(rows) == sorted(issued), "every ticket applied exactly once, none missing"


def _count(engine, table) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(table)).scalar_one()
