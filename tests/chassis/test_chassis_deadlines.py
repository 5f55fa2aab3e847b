"""A bounded RPC call carries the instant its caller stops waiting; the service neither starts nor
commits work past it (decision 0041). The request's TTL counts only its time in a broker queue:
a request held up elsewhere (a publisher reconnecting, a consumer re-attaching after a broker
restart) was executed after its caller had been answered 503, and a retry of the same press,
answered first, did not replay it. Over real RabbitMQ, on SQLite."""

from __future__ import annotations

import json
import time

import eventlet
import pytest
from kombu import Connection, Exchange, Queue
from nameko.dependency_providers import Config
from nameko.testing.services import dummy, entrypoint_hook
from sqlalchemy import create_engine, select

from mpp_chassis import messaging
from mpp_chassis.calls import BoundedRpcProxy
from mpp_chassis.db import Database
from mpp_chassis.migrate import upgrade
from mpp_contracts.errors import ServiceUnavailable
from mpp_queue.adapters.tables import metadata as queue_metadata
from tests.chassis.rpc_doubles import MuteCaller, declare_mute_queue
from tests.support.infra import wait_until

pytestmark = pytest.mark.integration

outbox = queue_metadata.tables["outbox"]
STARTED: list[str] = []
FINISHED: list[str] = []


class Ledger:
    """Stores one event per call, after an optional pause (a slow worker, a wait for a lock)."""

    name = "ledger"
    uow = Database(queue_metadata)

    @messaging.rpc
    def record(self, code: str, pause: float = 0) -> str:
        STARTED.append(code)
        try:
            eventlet.sleep(pause)
            self.uow.add_event("agency_registered", {"agency_id": code, "code": code, "name": code})
            self.uow.commit()
            return code
        finally:
            FINISHED.append(code)


class LedgerCaller:
    name = "ledgercaller"
    config = Config()
    ledger_rpc = BoundedRpcProxy("ledger")

    @dummy
    def record(self, code: str, pause: float = 0) -> str:
        return self.ledger_rpc.record(code, pause)


RPC_EXCHANGE = Exchange("nameko-rpc", type="topic", durable=True)
REPLIES = Queue("mpp.test.deadline-replies", RPC_EXCHANGE, routing_key="a-caller", auto_delete=True)


def stored_codes(url: str) -> list[str]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            bodies = conn.execute(select(outbox.c.body)).scalars()
            return sorted(json.loads(body)["payload"]["code"] for body in bodies)
    finally:
        engine.dispose()


@pytest.fixture
def ledger(container_factory, amqp_uri, tmp_path):
    STARTED.clear()
    FINISHED.clear()
    url = f"sqlite:///{tmp_path}/queue.db"
    upgrade("queue", url)
    container_factory(Ledger, {"AMQP_URI": amqp_uri, "DB_URL": url}).start()
    return url


def test_work_that_would_commit_after_its_caller_gave_up_is_rolled_back(
    ledger, container_factory, amqp_uri
):
    caller = container_factory(LedgerCaller, {"AMQP_URI": amqp_uri, "RPC_TIMEOUT": 1})
    caller.start()
    with entrypoint_hook(caller, "record") as record:
        assert record("ONTIME") == "ONTIME"
    with entrypoint_hook(caller, "record") as record, pytest.raises(ServiceUnavailable) as err:
        record("LATE", 2)  # the caller is answered 503 at 1 s, the worker wants to commit at 2
    assert err.value.code == "SERVICE_UNAVAILABLE"
    wait_until(lambda: "LATE" in FINISHED, timeout=10, message="the slow worker ended")
    assert stored_codes(ledger) == ["ONTIME"]


def test_a_request_delivered_after_its_deadline_is_not_started(ledger, amqp_uri):
    with Connection(amqp_uri) as conn:
        REPLIES(conn.default_channel).declare()
        producer = conn.Producer()
        for code, deadline in (("STALE", time.time() - 1), ("FRESH", time.time() + 30)):
            producer.publish(
                {"args": [code], "kwargs": {}},
                exchange=RPC_EXCHANGE,
                routing_key="ledger.record",
                reply_to="a-caller",
                correlation_id=code,
                headers={"nameko.deadline": deadline},
                serializer="json",
            )
        reply = wait_until(lambda: REPLIES(conn.default_channel).get(no_ack=True), timeout=10)
        # delivered in order to the one consumer: the stale request was handled (dropped) first
        assert reply.properties["correlation_id"] == "FRESH"
        assert reply.payload == {"result": "FRESH", "error": None}
        assert REPLIES(conn.default_channel).get(no_ack=True) is None
    assert STARTED == ["FRESH"]
    assert stored_codes(ledger) == ["FRESH"]


def test_a_request_carries_its_callers_deadline_and_inherits_an_earlier_one(
    container_factory, amqp_uri
):
    queue = declare_mute_queue(amqp_uri)
    caller = container_factory(MuteCaller, {"AMQP_URI": amqp_uri, "RPC_TIMEOUT": 3})
    caller.start()

    def ask(context_data: dict | None = None) -> float:
        def call():
            with entrypoint_hook(caller, "ask", context_data=context_data) as hook:
                with pytest.raises(ServiceUnavailable):
                    hook("halo")

        pending = eventlet.spawn(call)
        with Connection(amqp_uri) as conn:
            request = wait_until(lambda: queue(conn.default_channel).get(no_ack=True), timeout=3)
        pending.wait()
        return request.headers["nameko.deadline"]

    sent = time.time()
    own = ask()
    assert sent + 3 <= own <= time.time() + 3  # the bound, from the call's publish
    earlier = time.time() + 0.5
    assert ask({"deadline": earlier}) == earlier  # serving work due sooner: its deadline
    later = time.time() + 60
    assert ask({"deadline": later}) < later - 50  # never later than its own bound
