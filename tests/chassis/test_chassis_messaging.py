"""The chassis' messaging guarantees over real RabbitMQ: a failing handler neither loses its event
nor loops on it, a malformed event goes straight to the dead letters, and an RPC that gets no
answer fails within its bound instead of hanging the caller."""

from __future__ import annotations

import time

import eventlet
import pytest
import sqlalchemy as sa
from kombu import Connection
from nameko.amqp.publish import Publisher
from nameko.dependency_providers import Config
from nameko.rpc import rpc
from nameko.testing.services import dummy, entrypoint_hook

from mpp_chassis import messaging
from mpp_chassis.calls import BoundedRpcProxy
from mpp_chassis.db import Database
from mpp_chassis.messaging import DEAD_LETTER_QUEUE, dead_letter_declarations, event_handler
from mpp_chassis.migrate import upgrade
from mpp_chassis.outbox import event_exchange
from mpp_contracts.envelope import make_envelope
from mpp_contracts.errors import ServiceUnavailable
from mpp_queue.adapters.tables import metadata as queue_metadata
from tests.support import infra
from tests.support.infra import wait_until

pytestmark = pytest.mark.integration

CALLS: list[str] = []


class FailingService:
    name = "failing"

    @event_handler("queue", "agency_registered")
    def handle_agency_registered(self, event: dict) -> None:
        CALLS.append(event["id"])
        raise RuntimeError("this handler always fails")


def publish(amqp_uri: str, body: dict, routing_key: str) -> None:
    Publisher(amqp_uri).publish(
        body, exchange=event_exchange("queue"), routing_key=routing_key, mandatory=True
    )


def publish_agency_registered(amqp_uri: str) -> dict:
    envelope = make_envelope(
        "agency_registered",
        {"agency_id": "a1", "code": "DUK", "name": "Dukcapil"},
        source="queue",
        mall="mpp-test",
    )
    publish(amqp_uri, envelope, "agency_registered")
    return envelope


def dead_letters(amqp_uri: str) -> list[dict]:
    """Drain the dead-letter queue and return the message bodies."""
    _, queue = dead_letter_declarations()
    bodies = []
    with Connection(amqp_uri) as conn:
        bound = queue(conn.channel())
        while (message := bound.get(no_ack=True)) is not None:
            bodies.append(message.decode())
    return bodies


def test_failing_handler_is_retried_with_backoff_then_dead_lettered(container_factory, amqp_uri):
    CALLS.clear()
    config = {"AMQP_URI": amqp_uri, "EVENT_RETRY_DELAYS": "0.1,0.2"}
    container = container_factory(FailingService, config)
    container.start()
    envelope = publish_agency_registered(amqp_uri)

    letters = wait_until(lambda: dead_letter_messages(amqp_uri), timeout=30, message="dead letter")
    assert [letter.decode()["id"] for letter in letters] == [envelope["id"]]
    assert CALLS == [envelope["id"]] * 3, "first delivery + 2 retries, then it stops"
    headers = letters[0].headers
    assert headers[messaging.ORIGIN_HEADER] == container.entrypoints.pop().queue.name
    assert headers[messaging.RETRIES_HEADER] == 2
    assert headers[messaging.REASON_HEADER] == "retries_exhausted: RuntimeError"
    assert "x-death" not in headers  # the broker's bookkeeping of each wait is not carried along


OUTAGE: dict = {}


class FlakyService:
    """Fails while its 'database' is down (until ``OUTAGE["until"]``), then works."""

    name = "flaky"

    @event_handler("queue", "agency_registered")
    def handle_agency_registered(self, event: dict) -> None:
        CALLS.append(event["id"])
        if time.monotonic() < OUTAGE["until"]:
            raise RuntimeError("database is restarting")


def test_an_event_waits_out_an_outage_and_is_applied_without_a_dead_letter(
    container_factory, amqp_uri
):
    """An outage longer than a burst of immediate redeliveries (it used to burn the 5 deliveries
    in milliseconds and dead-letter the event) but shorter than the backoff steps: the event
    waits in the delay queues and is applied once the outage is over; nothing is dead-lettered."""
    CALLS.clear()
    OUTAGE["until"] = time.monotonic() + 2.0
    config = {"AMQP_URI": amqp_uri, "EVENT_RETRY_DELAYS": "0.25,0.5,1,2,4"}
    container = container_factory(FlakyService, config)
    container.start()
    handled = messaging.metrics.EVENTS_HANDLED.labels("flaky", "agency_registered", "ok")
    before = handled._value.get()
    publish_agency_registered(amqp_uri)
    wait_until(lambda: handled._value.get() > before, timeout=30, message="event applied")
    assert 2 <= len(CALLS) <= 5, CALLS  # a few spaced attempts, not a burst
    assert dead_letter_messages(amqp_uri) == []


def dead_letter_messages(amqp_uri: str) -> list:
    """Drain the dead-letter queue and return the messages."""
    _, queue = dead_letter_declarations()
    found = []
    with Connection(amqp_uri) as conn:
        bound = queue(conn.channel())
        while (message := bound.get(no_ack=True)) is not None:
            found.append(message)
    return found


def test_malformed_event_goes_to_the_dead_letters_without_running_the_handler(
    container_factory, amqp_uri
):
    CALLS.clear()
    container = container_factory(FailingService, {"AMQP_URI": amqp_uri})
    container.start()
    publish(
        amqp_uri, {"type": "agency_registered", "payload": "not an envelope"}, "agency_registered"
    )
    letters = wait_until(lambda: dead_letters(amqp_uri), timeout=30, message="dead letter")
    assert letters == [{"type": "agency_registered", "payload": "not an envelope"}]
    assert CALLS == []
    assert DEAD_LETTER_QUEUE == "mpp.dead-letters"


class SlowService:
    name = "slow"

    @rpc
    def ponder(self) -> str:
        eventlet.sleep(30)
        return "too late"


class CallerService:
    name = "caller"
    config = Config()
    slow_rpc = BoundedRpcProxy("slow")
    absent_rpc = BoundedRpcProxy("absent")

    @dummy
    def ask_slow(self) -> str:
        return self.slow_rpc.ponder()

    @dummy
    def ask_absent(self) -> str:
        return self.absent_rpc.anything()


def test_an_unanswered_rpc_fails_within_its_timeout(container_factory, amqp_uri):
    slow = container_factory(SlowService, {"AMQP_URI": amqp_uri})
    slow.start()
    caller = container_factory(CallerService, {"AMQP_URI": amqp_uri, "RPC_TIMEOUT": 1})
    caller.start()
    started = time.monotonic()
    with entrypoint_hook(caller, "ask_slow") as ask_slow, pytest.raises(ServiceUnavailable) as err:
        ask_slow()
    assert time.monotonic() - started < 5
    assert err.value.details["service"] == "slow"
    slow.kill()  # do not wait for the pondering worker


def test_an_rpc_to_a_service_that_never_ran_fails_within_its_timeout(container_factory, amqp_uri):
    """Requests are published without a confirm, so nameko's UnknownService (a mandatory
    publish returned before its confirm) is never raised: a service that never ran is
    unavailable when the bound runs out, as a stopped one is (decision 0041)."""
    caller = container_factory(CallerService, {"AMQP_URI": amqp_uri, "RPC_TIMEOUT": 1})
    caller.start()
    started = time.monotonic()
    with (
        entrypoint_hook(caller, "ask_absent") as ask_absent,
        pytest.raises(ServiceUnavailable) as err,
    ):
        ask_absent()
    assert time.monotonic() - started < 5
    assert (err.value.code, err.value.details["service"]) == ("SERVICE_UNAVAILABLE", "absent")


class ReplyingService:
    name = "replying"

    @messaging.rpc
    def echo(self, word: str) -> str:
        return word


class ReplyingCaller:
    name = "replyingcaller"
    config = Config()
    replying_rpc = BoundedRpcProxy("replying")

    @dummy
    def say(self, word: str) -> str:
        return self.replying_rpc.echo(word)


def test_a_reply_the_broker_cannot_take_does_not_end_the_service(
    container_factory, amqp_uri, monkeypatch
):
    """Found by the infrastructure fault test: during a RabbitMQ restart a reply's publish raised
    ECONNREFUSED out of the RPC entrypoint, which killed the container and so the process. The
    reply is given up (the caller's bounded wait answers 503); the service goes on answering."""
    from kombu.exceptions import OperationalError

    send_response = messaging._ReplyResponder.send_response
    refusals = [OperationalError("[Errno 111] ECONNREFUSED")]

    def broker_away_once(self, result, exc_info):
        if refusals:
            raise refusals.pop()
        return send_response(self, result, exc_info)

    monkeypatch.setattr(messaging._ReplyResponder, "send_response", broker_away_once)
    backend = container_factory(ReplyingService, {"AMQP_URI": amqp_uri})
    backend.start()
    caller = container_factory(ReplyingCaller, {"AMQP_URI": amqp_uri, "RPC_TIMEOUT": 1})
    caller.start()
    with entrypoint_hook(caller, "say") as say, pytest.raises(ServiceUnavailable):
        say("lost")
    assert not backend._died.ready(), "the service lives on"
    with entrypoint_hook(caller, "say") as say:
        assert say("heard") == "heard"


class DatabaseDownService:
    name = "dbdown"

    @messaging.rpc
    def read(self) -> int:
        from sqlalchemy import create_engine, text

        engine = create_engine("postgresql://postgres@127.0.0.1:1/none")  # nothing listens
        with engine.connect() as conn:
            return conn.execute(text("SELECT 1")).scalar_one()

    @messaging.rpc
    def crash(self) -> None:
        raise RuntimeError("a bug, not an outage")


class DatabaseCaller:
    name = "dbcaller"
    config = Config()
    dbdown_rpc = BoundedRpcProxy("dbdown")

    @dummy
    def read(self) -> int:
        return self.dbdown_rpc.read()

    @dummy
    def crash(self) -> None:
        return self.dbdown_rpc.crash()


def test_a_database_that_is_down_answers_service_unavailable_not_an_internal_error(
    container_factory, amqp_uri
):
    """The gateway turns ServiceUnavailable into 503 with Retry-After (a client retries); an
    unexpected error stays one (its 500)."""
    from nameko.exceptions import RemoteError

    backend = container_factory(DatabaseDownService, {"AMQP_URI": amqp_uri})
    backend.start()
    caller = container_factory(DatabaseCaller, {"AMQP_URI": amqp_uri, "RPC_TIMEOUT": 10})
    caller.start()
    with entrypoint_hook(caller, "read") as read, pytest.raises(ServiceUnavailable) as err:
        read()
    assert err.value.code == "DATABASE_UNAVAILABLE"
    # (nameko's serialisation turns the details' values into strings; Retry-After is one anyway)
    assert int(err.value.details["retry_after"]) == messaging.DATABASE_RETRY_AFTER_SECONDS
    with entrypoint_hook(caller, "crash") as crash, pytest.raises(RemoteError) as crashed:
        crash()
    assert crashed.value.exc_type == "RuntimeError"


class RecordingService:
    """Records each event in its own PostgreSQL database (its handled-event ids)."""

    name = "recorder"
    uow = Database(queue_metadata)

    @event_handler("queue", "agency_registered")
    def handle_agency_registered(self, event: dict) -> None:
        CALLS.append(event["id"])
        if self.uow.claim_event(event["id"], "handle_agency_registered"):
            self.uow.commit()


@pytest.mark.postgres
def test_a_service_whose_database_is_away_holds_its_events_instead_of_spending_them(
    container_factory, amqp_uri, pg_url_factory
):
    """Issue 16: a service that is not ready stops consuming until it is. The first handler that
    finds the database away shuts the gate; the events that arrive meanwhile are held, not run,
    so they spend no retries (two short steps here: without the gate every one of them burnt
    both within a second and was dead-lettered). Once the database answers, every event is
    applied once and nothing is dead-lettered."""
    CALLS.clear()
    url = pg_url_factory("mpp_gate")
    upgrade("queue", url)
    config = {
        "AMQP_URI": amqp_uri,
        "DB_URL": url,
        "EVENT_RETRY_DELAYS": "0.2,0.2",
        "READINESS_PROBE_SECONDS": 0.2,
    }
    container = container_factory(RecordingService, config)
    container.start()
    shut = messaging.metrics.CONSUMING_SHUT.labels("recorder")
    first = publish_agency_registered(amqp_uri)
    wait_until(lambda: first["id"] in CALLS, message="handled while the database answers")

    infra.database_connections(url, allowed=False)
    try:
        during = [publish_agency_registered(amqp_uri)["id"] for _ in range(6)]
        wait_until(lambda: shut._value.get() == 1, timeout=30, message="the gate shut")
        held = container.entrypoints.pop().gate
        wait_until(lambda: held.held >= 3, timeout=30, message="events held")
        eventlet.sleep(1.5)  # several probe rounds and retry steps while the database is away
        assert shut._value.get() == 1 and dead_letter_messages(amqp_uri) == []
        attempts_while_away = len(CALLS) - 1
    finally:
        infra.database_connections(url, allowed=True)

    def applied() -> set[str]:
        engine = sa.create_engine(url)
        try:
            with engine.connect() as conn:
                return set(conn.execute(sa.text("SELECT event_id FROM processed_events")).scalars())
        finally:
            engine.dispose()

    wait_until(lambda: applied() == {first["id"], *during}, timeout=30, message="all applied")
    assert shut._value.get() == 0
    assert dead_letter_messages(amqp_uri) == []
    # held events were not run while the database was away: only those already running when
    # it went (at most one per worker) and their retries tried it
    assert attempts_while_away < len(during) * 3, CALLS


class EchoService:
    name = "echo"

    @rpc
    def say(self, word: str) -> str:
        return word


class EchoCaller:
    name = "echocaller"
    config = Config()
    echo_rpc = BoundedRpcProxy("echo")

    @dummy
    def say(self, word: str) -> str:
        return self.echo_rpc.say(word)


def test_a_call_the_broker_cannot_take_answers_service_unavailable(container_factory, amqp_uri):
    """The caller's link to the broker is cut (a broker restarting, a network fault): the call
    fails as ServiceUnavailable (the gateway's 503, which clients retry), not as the transport's
    own error (its 500, which they do not); once the link is back, calls go through again."""
    from urllib.parse import urlparse

    from tests.support.proxy import TcpProxy

    broker = urlparse(amqp_uri)
    link = TcpProxy(broker.hostname, broker.port or 5672)
    through = amqp_uri.replace(f"{broker.hostname}:{broker.port or 5672}", f"127.0.0.1:{link.port}")
    container_factory(EchoService, {"AMQP_URI": amqp_uri}).start()
    caller = container_factory(EchoCaller, {"AMQP_URI": through, "RPC_TIMEOUT": 20})
    caller.start()
    try:
        with entrypoint_hook(caller, "say") as say:
            assert say("halo") == "halo"
        link.cut()
        with entrypoint_hook(caller, "say") as say, pytest.raises(ServiceUnavailable) as err:
            say("halo")
        assert err.value.code == "BROKER_UNAVAILABLE"
        link.restore()

        def answers() -> bool:
            try:
                with entrypoint_hook(caller, "say") as say:
                    return say("lagi") == "lagi"
            except ServiceUnavailable:
                return False

        wait_until(answers, timeout=30, interval=0.5, message="calls after the link is back")
    finally:
        caller.kill()
        link.close()
