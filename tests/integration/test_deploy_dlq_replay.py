"""The dead-letter command: an event whose handler keeps failing ends in ``mpp.dead-letters``
after bounded redeliveries; ``list`` and ``show`` inspect it without consuming it; once the handler
is fixed, ``replay`` sends it back to its own queue and the idempotent consumer applies it exactly
once, even when it is replayed twice."""

from __future__ import annotations

import json

import pytest
from kombu import Connection
from nameko.amqp.publish import Publisher
from prometheus_client import REGISTRY
from sqlalchemy import Column, Integer, MetaData, String, Table, create_engine, insert, select

from mpp_chassis import dlq, messaging
from mpp_chassis.db import Database
from mpp_chassis.messaging import event_handler
from mpp_chassis.outbox import event_exchange
from mpp_chassis.tables import add_chassis_tables
from mpp_contracts.envelope import make_envelope
from tests.support.infra import wait_until

pytestmark = pytest.mark.integration

metadata = MetaData()
registered = Table(
    "registered",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("agency_id", String(36), nullable=False),
)
add_chassis_tables(metadata)
STATE = {"broken": True, "calls": 0}


class DirectoryService:
    """Copies agencies; its handler is 'broken' (raises) until the test fixes it."""

    name = "directory"
    uow = Database(metadata)

    @event_handler("queue", "agency_registered")
    def handle_agency_registered(self, event: dict) -> None:
        STATE["calls"] += 1
        if STATE["broken"]:
            raise RuntimeError("bug: the directory cannot store agencies yet")
        if self.uow.claim_event(event["id"], "handle_agency_registered"):
            self.uow.session.execute(
                insert(registered).values(agency_id=event["payload"]["agency_id"])
            )
            self.uow.commit()


def test_dead_letter_is_listed_shown_and_replayed_exactly_once(
    container_factory, amqp_uri, tmp_path, capsys
):
    STATE.update(broken=True, calls=0)
    db_url = f"sqlite:///{tmp_path}/directory.db"
    engine = create_engine(db_url)
    metadata.create_all(engine)
    container = container_factory(
        DirectoryService, {"AMQP_URI": amqp_uri, "DB_URL": db_url, "EVENT_RETRY_DELAYS": "0.1"}
    )
    container.start()
    event = make_envelope(
        "agency_registered",
        {"agency_id": "agency-1", "code": "DUK", "name": "Dukcapil"},
        source="queue",
        mall="mpp-test",
    )
    Publisher(amqp_uri).publish(
        event,
        exchange=event_exchange("queue"),
        routing_key="agency_registered",
        mandatory=True,
        message_id=event["id"],
    )

    wait_until(
        lambda: _depth(amqp_uri, "mpp.dead-letters") == 1,
        timeout=30,
        message="the event dead-lettered",
    )
    assert STATE["calls"] == 2, "first delivery + one retry (EVENT_RETRY_DELAYS)"
    messaging.refresh_dead_letters(amqp_uri)
    assert REGISTRY.get_sample_value("mpp_dead_letters") == 1

    assert dlq.main(["--amqp-uri", amqp_uri, "list"]) == 0
    line = capsys.readouterr().out.strip()
    assert line.split()[:2] == [event["id"], "agency_registered"], line
    assert "handle_agency_registered" in line and "retries_exhausted" in line
    assert dlq.main(["--amqp-uri", amqp_uri, "show", event["id"]]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["body"] == event and shown["queue"].endswith("handle_agency_registered")
    assert dlq.main(["--amqp-uri", amqp_uri, "show", "no-such-id"]) == 1
    capsys.readouterr()
    assert _depth(amqp_uri, "mpp.dead-letters") == 1
    assert _applied(engine) == [], "inspecting changes nothing"

    STATE["broken"] = False  # the fix is deployed
    assert dlq.main(["--amqp-uri", amqp_uri, "replay", event["id"]]) == 0
    assert capsys.readouterr().out.strip() == f"replayed {event['id']} -> {shown['queue']}"
    wait_until(lambda: _applied(engine) == ["agency-1"], timeout=20, message="replay applied")
    assert dlq.list_letters(amqp_uri) == []
    messaging.refresh_dead_letters(amqp_uri)
    assert REGISTRY.get_sample_value("mpp_dead_letters") == 0

    # a second copy of the same event (a replay that crashed before its ack, say) is a no-op
    Publisher(amqp_uri).publish(
        event, exchange="", routing_key=shown["queue"], message_id=event["id"]
    )
    calls = STATE["calls"]
    wait_until(lambda: STATE["calls"] > calls, timeout=20, message="duplicate delivered")
    wait_until(lambda: _depth(amqp_uri, shown["queue"]) == 0, timeout=20)
    assert _applied(engine) == ["agency-1"], "applied exactly once"
    assert dlq.main(["--amqp-uri", amqp_uri, "replay", "gone"]) == 1


def _depth(amqp_uri: str, queue: str) -> int:
    """Messages ready in a queue, straight from the broker (management stats lag)."""
    with Connection(amqp_uri) as conn:
        return conn.channel().queue_declare(queue=queue, passive=True).message_count


def _applied(engine) -> list[str]:
    with engine.connect() as conn:
        return list(conn.execute(select(registered.c.agency_id)).scalars())


def test_a_long_dead_letter_queue_is_walked_not_held(amqp_uri, capsys, monkeypatch):
    """Replaying takes one dead letter at a time and acknowledges it once replayed, so the rest
    stay ready in the queue meanwhile; listing stops at its limit and says how many there are."""
    target = "evt-directory-handle_walk"
    _, dead_letters = dlq.dead_letter_declarations()
    with Connection(amqp_uri) as conn:
        channel = conn.channel()
        dead_letters(channel).declare()
        channel.queue_declare(queue=target, durable=True)
        for number in range(5):
            event = make_envelope(
                "agency_registered",
                {"agency_id": f"agency-{number}", "code": "DUK", "name": "Dukcapil"},
                source="queue",
                mall="mpp-test",
            )
            Publisher(amqp_uri).publish(
                event,
                exchange="",
                routing_key=dlq.DEAD_LETTER_QUEUE,
                message_id=event["id"],
                headers={messaging.ORIGIN_HEADER: target},
            )

    assert dlq.main(["--amqp-uri", amqp_uri, "list", "--limit", "2"]) == 0
    out, err = capsys.readouterr()
    assert len(out.splitlines()) == 2
    assert "5 dead letter(s) in mpp.dead-letters (the first 2" in err
    assert _depth(amqp_uri, dlq.DEAD_LETTER_QUEUE) == 5, "listing handed every one back"

    ready_at_each_replay = []
    replay_one = dlq.replay_one

    def counting_replay(conn, letter):
        ready_at_each_replay.append(_depth(amqp_uri, dlq.DEAD_LETTER_QUEUE))
        return replay_one(conn, letter)

    monkeypatch.setattr(dlq, "replay_one", counting_replay)
    assert dlq.main(["--amqp-uri", amqp_uri, "replay", "--all"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 5
    assert ready_at_each_replay == [4, 3, 2, 1, 0], "one taken at a time, the rest still queued"
    assert _depth(amqp_uri, dlq.DEAD_LETTER_QUEUE) == 0
    assert _depth(amqp_uri, target) == 5
