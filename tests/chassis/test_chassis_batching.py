"""Batched event handling over real RabbitMQ and a real database (SQLite and PostgreSQL): the
deliveries at hand are applied in one transaction with their handled-event ids and acknowledged
after its commit; a poison event falls back to one-by-one and is isolated; an event already
handled, or twice in one batch, is applied once (mpp_chassis.batching)."""

from __future__ import annotations

import eventlet
import pytest
import sqlalchemy as sa
from kombu import Connection

from mpp_chassis import messaging, metrics
from mpp_chassis.batching import batch_event_handler
from mpp_chassis.db import Database
from mpp_chassis.migrate import upgrade
from mpp_contracts.envelope import make_envelope
from mpp_queue.adapters.tables import metadata as queue_metadata
from tests.chassis.test_chassis_messaging import dead_letter_messages, publish
from tests.support import infra
from tests.support.infra import wait_until

pytestmark = pytest.mark.integration

HANDLER = "handle_agency_registered"
APPLIED: list[str] = []  # event ids in the order the handler applied them (committed or not)


class BatchingService:
    """Applies agency_registered events in batches; the effect is the claim and an event in
    its outbox, and an event whose code is POISON fails whoever applies it."""

    name = "batcher"
    uow = Database(queue_metadata)

    @batch_event_handler("queue", "agency_registered")
    def handle_agency_registered(self, events: list[dict]) -> None:
        for event in self.uow.claimed(events, HANDLER):
            if event["payload"]["code"] == "POISON":
                raise RuntimeError("this event always fails")
            APPLIED.append(event["id"])
            self.uow.add_event("agency_registered", event["payload"])  # an event it causes
        self.uow.commit()


def agency_event(code: str = "DUK") -> dict:
    payload = {"agency_id": f"a-{code}", "code": code, "name": "Dinas"}
    return make_envelope("agency_registered", payload, source="queue", mall="mpp-test")


class Commits:
    """The claims (statements, new or not) each committed transaction on one database
    carried (the outbox relay's commits, which claim nothing, are left out). The service's
    engine is made when its container starts, so the listeners are on every engine, filtered
    by database."""

    def __init__(self, url: str) -> None:
        self.database = sa.engine.make_url(url).database
        self.claims: list[int] = []
        self._listeners = (
            ("before_cursor_execute", self._execute),
            ("commit", self._commit),
            ("rollback", self._rollback),
        )
        for name, listener in self._listeners:
            sa.event.listen(sa.engine.Engine, name, listener)

    def remove(self) -> None:
        for name, listener in self._listeners:
            sa.event.remove(sa.engine.Engine, name, listener)

    def _ours(self, conn) -> bool:
        return conn.engine.url.database == self.database

    def _execute(self, conn, cursor, statement, parameters, context, executemany) -> None:
        if self._ours(conn) and statement.startswith("INSERT INTO processed_events"):
            conn.info["claims"] = conn.info.get("claims", 0) + 1

    def _commit(self, conn) -> None:
        claims = conn.info.pop("claims", 0)
        if claims and self._ours(conn):
            self.claims.append(claims)

    def _rollback(self, conn) -> None:
        conn.info.pop("claims", None)


@pytest.fixture
def batcher(container_factory, amqp_uri, db_url_factory):
    """``start(events)``: the events wait in the handler's queue first (a container declared it
    and stopped), then a fresh container finds them all in its prefetch at once."""
    url = db_url_factory("batcher")
    upgrade("queue", url)
    config = {
        "AMQP_URI": amqp_uri,
        "DB_URL": url,
        "EVENT_RETRY_DELAYS": "0.1,0.2",
        # the broker sends the queue's messages in several socket reads: a short gathering
        # wait makes the batch the whole prefetch here (production takes what is read, 0 ms)
        "EVENT_BATCH_WAIT_MS": 100,
        "OUTBOX_POLL_SECONDS": 0.2,
    }
    declaring = container_factory(BatchingService, config)
    declaring.start()  # declares the durable queue
    queue_name = next(iter(declaring.entrypoints)).queue.name

    class Handle:
        engine = sa.create_engine(url)
        container = declaring
        commits = Commits(url)

        def start(self, events: list[dict]):
            self.container.stop()
            for event in events:
                publish(amqp_uri, event, "agency_registered")
            container = container_factory(BatchingService, config)
            self.commits.claims.clear()
            container.start()
            self.container = container
            return container

        def applied(self) -> set[str]:
            with self.engine.connect() as conn:
                rows = conn.execute(sa.text("SELECT event_id FROM processed_events"))
                return set(rows.scalars())

        def caused(self) -> list[str]:
            """The correlation ids of the events the handler caused (its outbox)."""
            with self.engine.connect() as conn:
                rows = conn.execute(sa.text("SELECT correlation_id FROM outbox"))
                return list(rows.scalars())

        def waiting(self) -> int:
            """Messages left in the handler's queue once the container stopped (an unacked
            delivery goes back to it)."""
            self.container.stop()
            with Connection(amqp_uri) as conn:
                declared = conn.channel().queue_declare(queue=queue_name, passive=True)
                return declared.message_count

    handle = Handle()
    yield handle
    handle.commits.remove()
    handle.engine.dispose()


def handled(outcome: str) -> float:
    return metrics.EVENTS_HANDLED.labels("batcher", "agency_registered", outcome)._value.get()


def test_the_deliveries_at_hand_are_applied_in_one_transaction_and_acked_after_it(batcher):
    APPLIED.clear()
    events = [agency_event(f"A{n}") for n in range(8)]  # within the prefetch (max_workers, 10)
    ok_before = handled("ok")

    batcher.start(events)

    ids = {event["id"] for event in events}
    wait_until(lambda: batcher.applied() == ids, timeout=30, message="every event applied")
    assert batcher.commits.claims == [8], "one commit carried every claim"
    assert sorted(APPLIED) == sorted(ids)
    # each event an event caused carries that event's correlation id, not the batch's
    assert sorted(batcher.caused()) == sorted(event["correlation_id"] for event in events)
    wait_until(lambda: handled("ok") - ok_before == 8, message="counted per event")
    assert batcher.waiting() == 0, "every delivery was acknowledged"


def test_a_poison_event_fails_alone_and_the_rest_of_its_batch_is_applied(batcher, amqp_uri):
    APPLIED.clear()
    dead_letter_messages(amqp_uri)  # start from an empty dead-letter queue
    good = [agency_event(f"G{n}") for n in range(5)]
    poison = agency_event("POISON")
    failed = metrics.EVENT_BATCHES_FAILED.labels("batcher", "agency_registered")
    failed_before = failed._value.get()

    batcher.start([*good[:2], poison, *good[2:]])

    letters = wait_until(lambda: dead_letter_messages(amqp_uri), timeout=30, message="dead letter")
    assert [letter.decode()["id"] for letter in letters] == [poison["id"]]
    assert letters[0].headers[messaging.RETRIES_HEADER] == 2  # alone: first try + 2 retries
    assert batcher.applied() == {event["id"] for event in good}
    assert failed._value.get() - failed_before == 1
    # the batch was rolled back, then each event was applied alone in its own transaction
    assert batcher.commits.claims == [1] * 5
    # the two before the poison were applied in the batch, rolled back, and applied again
    tried = [event["id"] for event in [*good, *good[:2]]]
    assert sorted(APPLIED) == sorted(tried)
    assert batcher.waiting() == 0


def test_an_event_already_handled_or_twice_in_a_batch_is_applied_once(batcher):
    APPLIED.clear()
    first = agency_event("FIRST")
    batcher.start([first])
    wait_until(lambda: batcher.applied() == {first["id"]}, message="handled once")

    twice = agency_event("TWICE")
    other = agency_event("OTHER")
    # the relay published `first` again after a crash before its mark, and `twice` twice
    batcher.start([first, twice, other, twice])

    expected = {first["id"], twice["id"], other["id"]}
    wait_until(lambda: batcher.applied() == expected, message="the new events applied")
    wait_until(lambda: batcher.waiting() == 0, message="every delivery acknowledged")
    assert sorted(APPLIED) == sorted(expected), "each event applied exactly once"
    assert batcher.commits.claims == [4], "one commit: four claims asked, two of them new"


@pytest.mark.postgres
def test_a_batch_that_finds_the_database_away_is_held_not_spent(
    container_factory, amqp_uri, pg_url_factory
):
    """The batch fails on a database that refuses connections: the gate shuts before its
    events are handled one by one, so they are held (no retry step spent, nothing
    dead-lettered) and each is applied once the database answers."""
    APPLIED.clear()
    url = pg_url_factory("mpp_batch_gate")
    upgrade("queue", url)
    config = {
        "AMQP_URI": amqp_uri,
        "DB_URL": url,
        "EVENT_RETRY_DELAYS": "0.1,0.1",
        "EVENT_BATCH_WAIT_MS": 100,
        "READINESS_PROBE_SECONDS": 0.2,
    }
    declaring = container_factory(BatchingService, config)
    declaring.start()
    declaring.stop()
    events = [agency_event(f"H{n}") for n in range(6)]
    for event in events:
        publish(amqp_uri, event, "agency_registered")
    retries = metrics.EVENT_RETRIES.labels("batcher", "agency_registered")
    retries_before = retries._value.get()
    shut = metrics.CONSUMING_SHUT.labels("batcher")
    failed = metrics.EVENT_BATCHES_FAILED.labels("batcher", "agency_registered")
    failed_before = failed._value.get()

    infra.database_connections(url, allowed=False)
    try:
        container = container_factory(BatchingService, config)
        container.start()
        gate = next(iter(container.entrypoints)).gate
        wait_until(lambda: gate.held == len(events), timeout=30, message="the batch held")
        assert shut._value.get() == 1
        assert failed._value.get() - failed_before == 1, "the events came as one batch"
        eventlet.sleep(1.0)  # probe rounds while the database is away
        assert APPLIED == [] and gate.held == len(events)
    finally:
        infra.database_connections(url, allowed=True)

    engine = sa.create_engine(url)
    try:

        def applied() -> set[str]:
            with engine.connect() as conn:
                rows = conn.execute(sa.text("SELECT event_id FROM processed_events"))
                return set(rows.scalars())

        wait_until(
            lambda: applied() == {e["id"] for e in events}, timeout=30, message="all applied"
        )
    finally:
        engine.dispose()
    assert sorted(APPLIED) == sorted(e["id"] for e in events)
    assert retries._value.get() == retries_before, "no retry step was spent"
    assert dead_letter_messages(amqp_uri) == []
    assert shut._value.get() == 0
