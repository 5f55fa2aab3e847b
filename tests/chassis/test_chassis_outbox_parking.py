"""An event of a type the mall consumes that no queue takes is parked instead of being retried
forever, and republished once a consumer exists; events that are routable meanwhile are not held
up by it. A type no service of the mall consumes is sent once, whether or not a queue listens."""

from __future__ import annotations

import threading
import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from nameko.testing.services import dummy, entrypoint_hook
from sqlalchemy import create_engine, event, func, select

from mpp_chassis.db import Database
from mpp_chassis.messaging import event_handler
from mpp_chassis.migrate import upgrade
from mpp_chassis.outbox import RETENTION, UNROUTABLE, OutboxRelay, parked, republish
from mpp_queue.adapters.tables import metadata as queue_metadata
from tests.support.infra import wait_until

pytestmark = pytest.mark.integration

outbox = queue_metadata.tables["outbox"]
SEEN: list[str] = []


class Producer:
    name = "queue"
    uow = Database(queue_metadata)

    @dummy
    def announce(self, event_type: str, code: str) -> None:
        self.uow.add_event(event_type, {"agency_id": code, "code": code, "name": code})
        self.uow.commit()

    @dummy
    def rename_counter(self, name: str) -> None:  # counter_updated: for dashboards only
        payload = {"counter_id": "c-1", "agency_id": "a-1", "name": name, "service_ids": []}
        self.uow.add_event("counter_updated", payload)
        self.uow.commit()


class Listener:
    name = "listener"

    @event_handler("queue", "agency_registered")
    def handle_agency_registered(self, event: dict) -> None:
        SEEN.append(event["payload"]["code"])


class Dashboard:
    name = "dashboard"

    @event_handler("queue", "counter_updated")
    def handle_counter_updated(self, event: dict) -> None:
        SEEN.append(event["payload"]["name"])


def rows(engine):
    with engine.connect() as conn:
        return conn.execute(
            select(outbox.c.event_type, outbox.c.sent_at, outbox.c.last_error).order_by(
                outbox.c.seq
            )
        ).all()


def start_producer(container_factory, amqp_uri, tmp_path, **settings):
    """A started ``Producer`` on a fresh SQLite queue database, and an engine on that database."""
    SEEN.clear()
    url = f"sqlite:///{tmp_path}/queue.db"
    upgrade("queue", url)
    config = {"AMQP_URI": amqp_uri, "DB_URL": url, "OUTBOX_POLL_SECONDS": 0.2, **settings}
    producer = container_factory(Producer, config)
    producer.start()
    return producer, create_engine(url)


def test_unroutable_events_are_parked_then_republished(container_factory, amqp_uri, tmp_path):
    producer, engine = start_producer(
        container_factory, amqp_uri, tmp_path, OUTBOX_UNROUTABLE_ATTEMPTS=2
    )
    with entrypoint_hook(producer, "announce") as announce:
        announce("agency_registered", "NOBODY-LISTENS")
        wait_until(lambda: rows(engine)[0].sent_at is not None, timeout=30, message="parked")
    assert rows(engine)[0].last_error == UNROUTABLE

    listener = container_factory(Listener, {"AMQP_URI": amqp_uri})
    listener.start()
    with entrypoint_hook(producer, "announce") as announce:
        announce("agency_registered", "HEARD")
        wait_until(lambda: SEEN == ["HEARD"], timeout=30, message="routable event delivered")

    assert republish(engine, outbox, "agency_registered") == 1
    wait_until(
        lambda: sorted(SEEN) == ["HEARD", "NOBODY-LISTENS"],
        timeout=30,
        message="parked event republished",
    )
    with engine.connect() as conn:
        unsent = conn.execute(
            select(func.count()).select_from(outbox).where(outbox.c.sent_at.is_(None))
        ).scalar_one()
    assert unsent == 0


def test_a_type_without_a_queue_for_long_is_parked_at_once_and_a_new_consumer_ends_it(
    container_factory, amqp_uri, tmp_path
):
    """Once a type has had no queue for ``OUTBOX_PARK_AFTER_SECONDS``, its next event is parked
    at its first attempt (not retried for half a minute); it is still published, so the first
    event a new consumer's queue takes is delivered at once."""
    producer, engine = start_producer(
        container_factory,
        amqp_uri,
        tmp_path,
        OUTBOX_UNROUTABLE_ATTEMPTS=50,  # never reached: parking comes from the duration
        OUTBOX_PARK_AFTER_SECONDS=1.0,
    )

    def attempts_of(code: str):
        with engine.connect() as conn:
            return conn.execute(
                select(outbox.c.attempts, outbox.c.sent_at, outbox.c.last_error).where(
                    outbox.c.body.contains(f'"code": "{code}"')
                )
            ).one()

    with entrypoint_hook(producer, "announce") as announce:
        announce("agency_registered", "FIRST-MISS")
        wait_until(lambda: attempts_of("FIRST-MISS").attempts >= 1, timeout=30, message="tried")
    first = attempts_of("FIRST-MISS")
    assert first.sent_at is None and first.last_error == UNROUTABLE  # young: retried later

    # a clock threshold, not an event: let the type be without a queue for longer than 1 s
    time.sleep(1.1)
    with entrypoint_hook(producer, "announce") as announce:
        announce("agency_registered", "LONG-MISS")
        wait_until(lambda: attempts_of("LONG-MISS").sent_at is not None, timeout=30, message="park")
    parked = attempts_of("LONG-MISS")
    assert (parked.attempts, parked.last_error) == (1, UNROUTABLE)  # parked at its first attempt

    listener = container_factory(Listener, {"AMQP_URI": amqp_uri})
    listener.start()
    with entrypoint_hook(producer, "announce") as announce:
        announce("agency_registered", "HEARD")
        wait_until(lambda: "HEARD" in SEEN, timeout=10, message="delivered once a queue exists")
        # marked sent a moment after it was delivered (the fast path marks rounds together)
        wait_until(lambda: attempts_of("HEARD").sent_at is not None, timeout=10, message="marked")
    heard = attempts_of("HEARD")
    assert (heard.attempts, heard.last_error) == (1, None)


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_a_parked_event_is_kept_past_the_retention_until_it_is_sent(
    backend, amqp_uri, tmp_path, pg_url_factory
):
    """Sent events are pruned after ``RETENTION``; a parked one was never delivered, so pruning
    keeps it however old it is (it used to go after 7 days, silently), and the gauge counts it
    until it is republished and sent."""
    url = f"sqlite:///{tmp_path}/queue.db" if backend == "sqlite" else pg_url_factory("mpp_queue")
    upgrade("queue", url)
    engine = create_engine(url)
    now = datetime.now(UTC)
    old = now - RETENTION - timedelta(days=1)

    def row(event_type: str, sent_at, last_error=None) -> dict:
        return {
            "event_id": str(uuid.uuid4()),
            "event_type": event_type,
            "source": "queue",
            "body": "{}",
            "created_at": old,
            "sent_at": sent_at,
            "attempts": 1,
            "last_error": last_error,
        }

    with engine.begin() as conn:
        conn.execute(
            outbox.insert(),
            [
                row("delivered_long_ago", old),
                row("parked_long_ago", old, UNROUTABLE),
                row("parked_lately", now, UNROUTABLE),
                row("delivered_lately", now),
                row("waiting", None),
            ],
        )
    relay = OutboxRelay(engine=engine, outbox=outbox, amqp_uri=amqp_uri, wakeup=threading.Event())
    assert relay.backlog_and_parked() == (1, 2)

    assert relay.prune(now) == 1
    kept = {r.event_type for r in rows(engine)}
    assert kept == {"parked_long_ago", "parked_lately", "delivered_lately", "waiting"}
    assert [p["type"] for p in parked(engine, outbox)] == ["parked_long_ago", "parked_lately"]

    assert republish(engine, outbox, "parked_long_ago") == 1
    assert relay.backlog_and_parked() == (2, 1)
    engine.dispose()


def test_a_type_no_service_consumes_is_sent_once_and_never_parked(
    container_factory, amqp_uri, tmp_path
):
    """``counter_updated`` is for dashboards (not in ``mpp_contracts.events.CONSUMED``): with no
    queue bound it is confirmed and marked sent at its first attempt, not retried or parked (a
    parked row is kept forever and raises MppOutboxParked); a queue bound later gets the next."""
    producer, engine = start_producer(container_factory, amqp_uri, tmp_path)

    def row_of(name: str):
        with engine.connect() as conn:
            return conn.execute(
                select(outbox.c.attempts, outbox.c.sent_at, outbox.c.last_error).where(
                    outbox.c.body.contains(f'"name": "{name}"')
                )
            ).one()

    with entrypoint_hook(producer, "rename_counter") as rename:
        rename("UNHEARD")
        wait_until(lambda: row_of("UNHEARD").attempts >= 1, timeout=30, message="published")
    unheard = row_of("UNHEARD")
    assert unheard.sent_at is not None and unheard.last_error is None, unheard
    assert unheard.attempts == 1
    assert parked(engine, outbox) == []

    container_factory(Dashboard, {"AMQP_URI": amqp_uri}).start()
    with entrypoint_hook(producer, "rename_counter") as rename:
        rename("HEARD")
        wait_until(lambda: "HEARD" in SEEN, timeout=10, message="delivered to a bound queue")
    assert "UNHEARD" not in SEEN


@pytest.mark.postgres
def test_the_relays_gauges_read_the_backlog_and_the_parked_not_the_week_kept(
    amqp_uri, pg_url_factory
):
    """The relay counts its backlog and its parked events every second, in every process. With
    a week of sent events kept (20,000 rows here; a busy floor keeps more) the old single
    ``FILTER`` count read every row each time: a sequential scan of the whole outbox. Each count
    now reads its partial index, and finds the same numbers."""
    url = pg_url_factory("mpp_queue")
    upgrade("queue", url)
    engine = create_engine(url)
    outbox = queue_metadata.tables["outbox"]
    now = datetime.now(UTC)

    def row(n: int, sent_at, last_error=None) -> dict:
        return {
            "event_id": str(uuid.uuid4()),
            "event_type": f"type_{n % 7}",
            "source": "queue",
            "body": '{"payload": "' + "x" * 300 + '"}',
            "created_at": now - timedelta(seconds=n * 30),
            "sent_at": sent_at,
            "attempts": 1,
            "last_error": last_error,
        }

    with engine.begin() as conn:
        conn.execute(
            outbox.insert(), [row(n, now - timedelta(seconds=n * 30)) for n in range(20_000)]
        )
        conn.execute(outbox.insert(), [row(n, None) for n in range(3)])
        conn.execute(outbox.insert(), [row(n, now, UNROUTABLE) for n in range(2)])
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("ANALYZE outbox")
    sent: list[tuple] = []
    event.listen(engine, "before_cursor_execute", lambda *a: sent.append((a[2], a[3])))
    relay = OutboxRelay(engine=engine, outbox=outbox, amqp_uri=amqp_uri, wakeup=threading.Event())
    assert relay.backlog_and_parked() == (3, 2)
    ((statement, parameters),) = sent
    with engine.connect() as conn:
        explain = f"EXPLAIN (ANALYZE, FORMAT JSON) {statement}"
        plan = conn.exec_driver_sql(explain, parameters or None).scalar_one()

    def scans(node: dict):
        if "Relation Name" in node:
            yield node["Node Type"], node["Actual Rows"] * node["Actual Loops"]
        for child in node.get("Plans", []):
            yield from scans(child)

    read = list(scans(plan[0]["Plan"]))
    assert read and all(kind != "Seq Scan" for kind, _ in read), read
    assert sum(rows for _, rows in read) <= 5, read
    engine.dispose()
