"""What an RPC request or reply puts on the wire, now that :mod:`mpp_chassis.transient` writes it
with the channel's ``basic_publish`` instead of kombu's ``Producer.publish``: the message nameko
sends for the same arguments (delivery mode 1 aside, for a reply), and whole messages however
many greenlets publish at once (decision 0041)."""

from __future__ import annotations

import socket
import time

import eventlet
import pytest
from kombu import Connection, Exchange, Queue
from nameko.amqp.publish import Publisher
from nameko.constants import NON_PERSISTENT
from nameko.rpc import Responder

from mpp_chassis.transient import ReplyResponder, TransientPublisher
from tests.support.infra import wait_until

pytestmark = pytest.mark.integration

RPC_EXCHANGE = Exchange("nameko-rpc", type="topic", durable=True)
REQUESTS = Queue("rpc-queue", RPC_EXCHANGE, routing_key="queue.*", durable=True)
REPLY_TO = "rpc.reply-gateway-1"
REPLIES = Queue(REPLY_TO, RPC_EXCHANGE, routing_key=REPLY_TO, durable=True)


def delivered(conn, queue: Queue):
    message = wait_until(lambda: queue(conn.default_channel).get(no_ack=True), timeout=5)
    info = message.delivery_info
    return message.body, message.properties, (info["exchange"], info["routing_key"])


def test_a_request_is_the_message_nameko_sends_for_the_same_arguments(amqp_uri):
    """Body, content type and encoding, delivery mode 1, expiration in ms, reply_to, correlation
    id, headers (nameko's context and ``nameko.deadline``), exchange and routing key."""

    def ask(publisher_cls) -> None:
        publisher = publisher_cls(
            amqp_uri, serializer="json", expiration=2.5, delivery_mode=NON_PERSISTENT
        )
        publisher.publish(
            {"args": ["svc-ktp"], "kwargs": {"channel": "kiosk", "ahead": None}},
            exchange=RPC_EXCHANGE,
            routing_key="queue.take_ticket",
            reply_to=REPLY_TO,
            correlation_id="call-1",
            extra_headers={
                "nameko.call_id_stack": ["gateway.take_ticket.1"],
                "nameko.correlation_id": "journey-1",
                "nameko.deadline": 1_800_000_000.25,
            },
        )

    with Connection(amqp_uri) as conn:
        REQUESTS(conn.default_channel).declare()
        ask(Publisher)  # nameko's own, through kombu's Producer.publish
        expected = delivered(conn, REQUESTS)
        ask(TransientPublisher)
        sent = delivered(conn, REQUESTS)
    assert sent == expected
    body, properties, route = sent
    assert route == ("nameko-rpc", "queue.take_ticket")
    assert properties["delivery_mode"] == 1
    assert properties["expiration"] == "2500"
    assert properties["content_type"] == "application/json"
    assert properties["application_headers"]["nameko.deadline"] == 1_800_000_000.25


class _Delivered:
    """A request as the RPC entrypoint sees it: what a reply reads of it."""

    properties = {
        "content_type": "application/json",
        "reply_to": REPLY_TO,
        "correlation_id": "call-2",
    }


@pytest.mark.parametrize(
    "result, exc_info",
    [
        ({"ticket_id": "t-1", "number": "A-017", "ahead": 3}, None),
        (None, (ValueError, ValueError("habis"), None)),
    ],
)
def test_a_reply_is_the_message_nameko_sends_but_transient(amqp_uri, result, exc_info):
    with Connection(amqp_uri) as conn:
        REPLIES(conn.default_channel).declare()
        Responder(amqp_uri, RPC_EXCHANGE, "json", _Delivered()).send_response(result, exc_info)
        body, properties, route = delivered(conn, REPLIES)
        ReplyResponder(amqp_uri, RPC_EXCHANGE, "json", _Delivered()).send_response(result, exc_info)
        sent = delivered(conn, REPLIES)
    assert properties.pop("delivery_mode") == 2  # nameko's: persistent
    assert sent == (body, {**properties, "delivery_mode": 1}, route)
    assert route == ("nameko-rpc", REPLY_TO)
    assert sent[1]["correlation_id"] == "call-2"


def test_many_greenlets_publishing_at_once_each_message_arrives_whole(amqp_uri):
    """Each publish has a pooled connection to itself. The broker is reached through a proxy
    in this process with a small receive buffer, read only while the publishers wait: writing
    a large message waits for the socket, other greenlets publish meanwhile, and every message
    still arrives whole, in order per publisher."""
    from urllib.parse import urlparse

    from tests.support.proxy import TcpProxy

    senders, each = 10, 3
    body = "x" * 1_000_000  # frames of 128 kB
    broker = urlparse(amqp_uri)
    link = TcpProxy(broker.hostname, broker.port or 5672)
    link.listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65_536)  # its connections'
    through = amqp_uri.replace(f"{broker.hostname}:{broker.port or 5672}", f"127.0.0.1:{link.port}")
    queue = Queue("mpp.test.crowd", RPC_EXCHANGE, routing_key="crowd", auto_delete=True)
    publishing: list[int] = []  # the publishes under way
    most = [0]  # the most under way at once

    def send(sender: int) -> None:
        publisher = TransientPublisher(through, serializer="json")
        for n in range(each):
            publishing.append(sender)
            most[0] = max(most[0], len(publishing))
            publisher.publish(
                {"sender": sender, "n": n, "body": body},
                exchange=RPC_EXCHANGE,
                routing_key="crowd",
                extra_headers={"nameko.deadline": time.time() + 5},
            )
            publishing.remove(sender)

    try:
        with Connection(amqp_uri) as conn:
            queue(conn.default_channel).declare()
            for thread in [eventlet.spawn(send, sender) for sender in range(senders)]:
                thread.wait()
            received: dict[int, list[int]] = {}
            for _ in range(senders * each):
                message = wait_until(lambda: queue(conn.default_channel).get(no_ack=True), 10)
                assert message.payload["body"] == body
                received.setdefault(message.payload["sender"], []).append(message.payload["n"])
    finally:
        link.close()
    assert most[0] > 1  # publishes did overlap
    assert received == {sender: list(range(each)) for sender in range(senders)}
