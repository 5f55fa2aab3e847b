"""The outbox relay's fast path: the events a process commits are handed to its relay and
published from memory, without reading them back; they are marked sent with one statement for
several rounds. The poll still finds whatever the fast path did not publish, and leaves the rows
the fast path holds alone."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from nameko.testing.services import dummy, entrypoint_hook
from sqlalchemy import select, update
from sqlalchemy.orm import sessionmaker

from mpp_chassis import metrics
from mpp_chassis.db import Database, UnitOfWork
from mpp_chassis.engine import make_engine
from mpp_chassis.migrate import upgrade
from mpp_chassis.outbox import OutboxRelay
from mpp_contracts.events import CONSUMED
from mpp_queue.adapters.tables import metadata as queue_metadata
from tests.support.infra import wait_until
from tests.support.outbox import listen, received, unsent
from tests.support.statements import recording

pytestmark = pytest.mark.integration

outbox = queue_metadata.tables["outbox"]


class Floor:
    """A queue database, a relay on it (not running: the test drives its rounds) and units of
    work whose commits hand their rows to that relay."""

    def __init__(self, url: str, amqp_uri: str, **relay_options) -> None:
        upgrade("queue", url)
        self.url = url
        self.engine = make_engine(url)
        self.relay = OutboxRelay(
            engine=self.engine,
            outbox=outbox,
            amqp_uri=amqp_uri,
            wakeup=threading.Event(),
            must_route=CONSUMED,
            **relay_options,
        )
        self.sessions = sessionmaker(bind=self.engine)

    def commit(self, *codes: str, hand_over=None) -> None:
        uow = UnitOfWork(
            self.sessions(),
            outbox,
            queue_metadata.tables["processed_events"],
            source="queue",
            mall="mpp-test",
            context_data={},
            on_commit=hand_over or self.relay.hand_over,
        )
        for code in codes:
            uow.add_event("agency_registered", {"agency_id": code, "code": code, "name": code})
        uow.commit()
        uow.session.close()

    def close(self) -> None:
        self.relay.stop()
        self.engine.dispose()


@pytest.fixture
def floor(db_url_factory, amqp_uri):
    listen(amqp_uri)
    floor = Floor(db_url_factory("queue"), amqp_uri, handover_grace_seconds=60)
    yield floor
    floor.close()


def test_committed_events_are_published_from_memory_and_marked_with_one_statement(floor, amqp_uri):
    published = metrics.OUTBOX_PUBLISHED._value.get()
    with recording(floor.engine) as sent:
        floor.commit("A", "B")
        assert floor.relay.publish_handed() == 2
        floor.commit("C")
        assert floor.relay.publish_handed() == 1
        assert unsent(floor.url) == 3  # published, marked together a moment later
        floor.relay.mark_sent()
    relay = [s for s in sent.statements if "outbox" in s and not s.startswith(("INSERT", "WITH"))]
    assert len(relay) == 1, relay  # no SELECT, no SET LOCAL: one UPDATE for both rounds
    assert relay[0].startswith("UPDATE outbox SET sent_at")
    assert received(amqp_uri) == ["A", "B", "C"]  # in commit order
    assert unsent(floor.url) == 0
    assert metrics.OUTBOX_PUBLISHED._value.get() - published == 3
    assert floor.relay.polls == 0


def test_the_poll_leaves_young_and_held_rows_to_the_fast_path_and_takes_lost_ones(floor, amqp_uri):
    floor.commit("LOST", hand_over=lambda rows: None)  # the process died before its hand-over
    floor.commit("HELD")  # handed over, its relay busy elsewhere
    assert floor.relay.publish_pending() == 0, "younger than the grace: the fast path's"

    with floor.engine.begin() as conn:  # both rows age past the grace
        conn.execute(update(outbox).values(created_at=datetime.now(UTC) - timedelta(seconds=61)))
    assert floor.relay.publish_pending() == 1, "the lost row, not the one still handed over"
    assert received(amqp_uri) == ["LOST"]
    assert floor.relay.publish_handed() == 1
    assert floor.relay.publish_pending() == 0, "published, not yet marked: still held"
    floor.relay.mark_sent()
    assert received(amqp_uri) == ["HELD"]
    assert unsent(floor.url) == 0


def test_an_unroutable_event_of_the_fast_path_is_retried_by_the_poll(db_url_factory, amqp_uri):
    floor = Floor(db_url_factory("queue"), amqp_uri, handover_grace_seconds=60)
    try:
        floor.commit("NOBODY")  # no queue bound to agency_registered
        assert floor.relay.publish_handed() == 0
        with floor.engine.connect() as conn:
            row = conn.execute(
                select(
                    outbox.c.attempts,
                    outbox.c.sent_at,
                    outbox.c.last_error,
                    outbox.c.next_attempt_at,
                )
            ).one()
        assert (row.attempts, row.sent_at, row.last_error) == (1, None, "unroutable")
        assert row.next_attempt_at is not None, "due for the poll, whatever the grace"
        floor.relay.mark_sent()  # nothing of it to mark
        assert unsent(floor.url) == 1
    finally:
        floor.close()


def test_events_published_while_the_database_is_away_are_marked_once_it_is_back(
    pg_url_factory, amqp_uri
):
    """The fast path publishes without the database; marking them then fails. They stay held
    (the poll does not publish them again) and are marked once the database answers."""
    import sqlalchemy as sa

    from tests.support.infra import database_connections as allow

    listen(amqp_uri)
    url = pg_url_factory("mpp_queue")
    floor = Floor(url, amqp_uri)  # no grace: only holding keeps the poll off them

    try:
        floor.commit("A", "B")
        assert floor.relay.publish_handed() == 2
        allow(url, allowed=False)
        with pytest.raises(sa.exc.OperationalError):
            floor.relay.mark_sent()
        with pytest.raises(sa.exc.OperationalError):
            floor.relay.publish_pending()
        allow(url, allowed=True)
        assert floor.relay.publish_pending() == 0, "held: not published a second time"
        floor.relay.mark_sent()
        assert unsent(floor.url) == 0
        assert received(amqp_uri) == ["A", "B"]
    finally:
        allow(url, allowed=True)
        floor.close()


class Producer:
    name = "queue"
    uow = Database(queue_metadata)

    @dummy
    def announce(self, code: str) -> None:
        self.uow.add_event("agency_registered", {"agency_id": code, "code": code, "name": code})
        self.uow.commit()

    @dummy
    def announce_after_rollback(self, code: str) -> None:
        self.uow.add_event("agency_registered", {"agency_id": "R", "code": "ROLLED", "name": "R"})
        self.uow.rollback()
        self.announce(code)

    @dummy
    def announce_after_session_rollback(self, code: str) -> None:
        self.uow.add_event("agency_registered", {"agency_id": "S", "code": "SESSION", "name": "S"})
        self.uow.session.rollback()  # past the unit of work: its rows are forgotten all the same
        self.announce(code)


def test_a_service_publishes_its_commits_without_polling_and_nothing_rolled_back(
    container_factory, db_url_factory, amqp_uri
):
    listen(amqp_uri)
    url = db_url_factory("queue")
    upgrade("queue", url)
    producer = container_factory(
        Producer, {"AMQP_URI": amqp_uri, "DB_URL": url, "OUTBOX_POLL_SECONDS": 60}
    )
    producer.start()
    database = next(d for d in producer.dependencies if isinstance(d, Database))
    relay = database.relay
    wait_until(lambda: relay.polls == 1, message="the poll at start")
    with recording(database.engine) as sent:
        with entrypoint_hook(producer, "announce") as announce:
            announce("ONE")
            announce("TWO")
        with entrypoint_hook(producer, "announce_after_rollback") as announce:
            announce("THREE")
        with entrypoint_hook(producer, "announce_after_session_rollback") as announce:
            announce("FOUR")
        codes: list[str] = []
        wait_until(lambda: codes.extend(received(amqp_uri)) or len(codes) >= 4, message="all")
        wait_until(lambda: unsent(url) == 0, message="marked sent")
    assert codes == ["ONE", "TWO", "THREE", "FOUR"], "nothing of a rolled-back transaction"
    assert relay.polls == 1, "no poll round for the events committed in the process"
    assert not [s for s in sent.statements if s.startswith("SELECT") and "FROM outbox" in s]
    assert received(amqp_uri) == []
