"""RPC requests over real RabbitMQ: transient, unconfirmed, still bounded (decision 0041)."""

from __future__ import annotations

import amqp
import eventlet
import pytest
from kombu import Connection, Exchange, Queue
from nameko.dependency_providers import Config
from nameko.testing.services import dummy, entrypoint_hook

from mpp_chassis.calls import BoundedRpcProxy, RequestPublisher
from mpp_contracts.errors import ServiceUnavailable
from tests.support.infra import wait_until

pytestmark = pytest.mark.integration


class MuteCaller:
    name = "mutecaller"
    config = Config()
    mute_rpc = BoundedRpcProxy("mute")

    @dummy
    def ask(self, word: str) -> str:
        return self.mute_rpc.listen(word)


def test_a_request_is_published_transient_without_waiting_for_a_confirm(
    container_factory, amqp_uri, monkeypatch
):
    """nameko published every request persistent (written to the broker's store) and waited for
    its confirm; the caller's bound makes both redundant. The request still expires with it."""
    confirmed: list[str] = []
    publish_confirm = amqp.Channel.basic_publish_confirm

    def spy(channel, *args, **kwargs):
        confirmed.append(kwargs.get("routing_key", ""))
        return publish_confirm(channel, *args, **kwargs)

    monkeypatch.setattr(amqp.Channel, "basic_publish_confirm", spy)
    # mute's queue exists (it ran once) but nobody consumes it: the request waits there
    queue = Queue(
        "rpc-mute",
        Exchange("nameko-rpc", type="topic", durable=True),
        routing_key="mute.*",
        durable=True,
    )
    with Connection(amqp_uri) as conn:
        queue(conn).declare()
    caller = container_factory(MuteCaller, {"AMQP_URI": amqp_uri, "RPC_TIMEOUT": 3})
    caller.start()

    def ask():
        with entrypoint_hook(caller, "ask") as ask, pytest.raises(ServiceUnavailable) as err:
            ask("halo")
        return err.value.code

    call = eventlet.spawn(ask)
    with Connection(amqp_uri) as conn:
        request = wait_until(lambda: queue(conn.default_channel).get(no_ack=True), timeout=3)
    assert request.payload["args"] == ["halo"]
    assert request.properties["delivery_mode"] == 1
    assert request.properties["expiration"] == "3000"
    assert confirmed == []
    assert call.wait() == "SERVICE_UNAVAILABLE"


def test_a_request_on_a_connection_the_broker_dropped_goes_out_on_a_new_one(amqp_uri):
    """Without a confirm, a request written to a connection the broker has dropped would be
    lost silently (and answered 503 only at the bound): the publisher sees the drop first and
    publishes on a new connection."""
    from urllib.parse import urlparse

    from tests.support.proxy import TcpProxy

    broker = urlparse(amqp_uri)
    link = TcpProxy(broker.hostname, broker.port or 5672)
    through = amqp_uri.replace(f"{broker.hostname}:{broker.port or 5672}", f"127.0.0.1:{link.port}")
    exchange = Exchange("mpp.test.requests", type="topic", durable=False, auto_delete=True)
    queue = Queue("mpp.test.requests", exchange, routing_key="#", auto_delete=True)
    publisher = RequestPublisher(through)
    try:
        with Connection(amqp_uri) as conn:
            queue(conn.default_channel).declare()

            def delivered(word: str):
                publisher.publish({"word": word}, exchange=exchange, routing_key="r")
                message = wait_until(lambda: queue(conn.default_channel).get(no_ack=True), 5)
                return message.payload["word"]

            assert delivered("satu") == "satu"
            link.cut()  # the pooled connection is dropped, as by a broker restarting
            link.restore()
            assert delivered("dua") == "dua"
    finally:
        link.close()
