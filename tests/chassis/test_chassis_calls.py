"""RPC requests and replies over real RabbitMQ: transient, unconfirmed, on pooled connections
found without building a connection per publish; calls still bounded (decision 0041)."""

from __future__ import annotations

from urllib.parse import quote, unquote, urlsplit

import amqp
import eventlet
import pytest
import requests
from kombu import Connection, Exchange, Queue
from nameko.dependency_providers import Config
from nameko.testing.services import dummy, entrypoint_hook

from mpp_chassis import messaging
from mpp_chassis.calls import BoundedReplyListener, BoundedRpcProxy
from mpp_chassis.transient import TransientPublisher
from mpp_contracts.errors import ServiceUnavailable
from tests.chassis.rpc_doubles import MuteCaller, declare_mute_queue
from tests.support.infra import RABBIT_API, wait_until

pytestmark = pytest.mark.integration


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
    queue = declare_mute_queue(amqp_uri)
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
    publisher = TransientPublisher(through)
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


class EchoingService:
    name = "echoing"

    @messaging.rpc
    def echo(self, word: str) -> str:
        return word

    @messaging.rpc
    def refuse(self, word: str) -> None:
        raise ValueError(word)

    @messaging.rpc
    def unsendable(self, word: str) -> object:
        return {word: object()}  # no JSON for it


RPC_EXCHANGE = Exchange("nameko-rpc", type="topic", durable=True)
REPLIES = Queue("mpp.test.replies", RPC_EXCHANGE, routing_key="a-caller", auto_delete=True)


def ask_by_hand(conn, method: str, args: list, correlation_id: str):
    """Publish a request to ``echoing`` as nameko's proxy does and return the raw reply."""
    REPLIES(conn.default_channel).declare()
    conn.Producer().publish(
        {"args": args, "kwargs": {}},
        exchange=RPC_EXCHANGE,
        routing_key=f"echoing.{method}",
        reply_to="a-caller",
        correlation_id=correlation_id,
        serializer="json",
    )
    return wait_until(lambda: REPLIES(conn.default_channel).get(no_ack=True), timeout=5)


class EchoingCaller:
    name = "echoingcaller"
    config = Config()
    echoing_rpc = BoundedRpcProxy("echoing")

    @dummy
    def say(self, word: str) -> str:
        return self.echoing_rpc.echo(word)


def test_a_reply_goes_transient_and_unconfirmed_to_its_callers_reply_to(
    container_factory, amqp_uri, monkeypatch
):
    """nameko published every reply persistent (RabbitMQ wrote it to its store, the reply queues
    being durable) although it is worth nothing once its caller stops waiting. Routing, correlation
    id, payload and the error's serialisation are nameko's."""
    confirmed: list[str] = []
    publish_confirm = amqp.Channel.basic_publish_confirm

    def spy(channel, *args, **kwargs):
        confirmed.append(kwargs.get("routing_key", ""))
        return publish_confirm(channel, *args, **kwargs)

    monkeypatch.setattr(amqp.Channel, "basic_publish_confirm", spy)
    container_factory(EchoingService, {"AMQP_URI": amqp_uri}).start()
    with Connection(amqp_uri) as conn:
        answer = ask_by_hand(conn, "echo", ["halo"], "call-1")
        refusal = ask_by_hand(conn, "refuse", ["halo"], "call-2")
    assert answer.payload == {"result": "halo", "error": None}
    assert (answer.properties["correlation_id"], answer.delivery_info["routing_key"]) == (
        "call-1",
        "a-caller",
    )
    assert answer.properties["delivery_mode"] == 1
    assert refusal.properties["correlation_id"] == "call-2"
    assert refusal.properties["delivery_mode"] == 1
    assert refusal.payload["result"] is None
    assert refusal.payload["error"]["exc_type"] == "ValueError"
    assert refusal.payload["error"]["exc_args"] == ["halo"]
    assert confirmed == []


def test_no_kombu_connection_is_built_per_call_on_either_side(
    container_factory, amqp_uri, monkeypatch
):
    """nameko's Publisher built a kombu Connection per publish (~40 µs of CPU in a service, more
    elsewhere) only to find its pooled producer; requests and replies find their pooled
    connection by one built once."""
    from kombu import connection

    container_factory(EchoingService, {"AMQP_URI": amqp_uri}).start()
    caller = container_factory(EchoingCaller, {"AMQP_URI": amqp_uri, "RPC_TIMEOUT": 5})
    caller.start()
    with entrypoint_hook(caller, "say") as say:
        assert say("pertama") == "pertama"  # the pools have their connection now
    built: list[str] = []
    init = connection.Connection.__init__

    def counting_init(self, *args, **kwargs):
        built.append(repr(args[:1]))
        init(self, *args, **kwargs)

    monkeypatch.setattr(connection.Connection, "__init__", counting_init)
    for n in range(10):
        with entrypoint_hook(caller, "say") as say:
            assert say(f"kata {n}") == f"kata {n}"
    assert built == []


def test_replies_are_consumed_without_acknowledgements(container_factory, amqp_uri):
    """nameko acknowledged every reply (one more frame per call, the broker holding the reply
    until it came); a caller's reply queue is consumed ``no_ack``, on its own connection. The
    requests a service consumes are still acknowledged, after their work."""
    container_factory(EchoingService, {"AMQP_URI": amqp_uri}).start()
    caller = container_factory(EchoingCaller, {"AMQP_URI": amqp_uri, "RPC_TIMEOUT": 5})
    caller.start()
    for n in range(3):
        with entrypoint_hook(caller, "say") as say:
            assert say(f"kata {n}") == f"kata {n}"
    (listener,) = [e for e in caller.extensions if isinstance(e, BoundedReplyListener)]
    vhost = unquote(urlsplit(amqp_uri).path.lstrip("/"))

    def consumers() -> dict[str, bool]:
        answer = requests.get(f"{RABBIT_API}/consumers/{quote(vhost, safe='')}", timeout=5)
        answer.raise_for_status()
        return {c["queue"]["name"]: c["ack_required"] for c in answer.json()}

    seen = wait_until(lambda: (c := consumers()) and listener.queue.name in c and c)
    assert seen[listener.queue.name] is False
    assert seen["rpc-echoing"] is True


def test_arguments_are_checked_against_a_signature_built_once(
    container_factory, amqp_uri, monkeypatch
):
    """nameko checked every call's arguments with ``inspect.getcallargs``, which rebuilds the
    method's signature each time; a call that does not fit is still refused with its text."""
    import inspect

    from nameko.exceptions import IncorrectSignature

    getcallargs = inspect.getcallargs
    checked: list[str] = []

    def counting_getcallargs(fn, *args, **kwargs):
        checked.append(fn.__name__)
        return getcallargs(fn, *args, **kwargs)

    monkeypatch.setattr(inspect, "getcallargs", counting_getcallargs)
    container_factory(EchoingService, {"AMQP_URI": amqp_uri}).start()
    with Connection(amqp_uri) as conn:
        answers = [ask_by_hand(conn, "echo", [f"kata {n}"], f"call-{n}") for n in range(5)]
        assert checked == []
        misfit = ask_by_hand(conn, "echo", ["satu", "dua"], "call-misfit")
    assert [answer.payload["result"] for answer in answers] == [f"kata {n}" for n in range(5)]
    with pytest.raises(TypeError) as nameko_says:
        getcallargs(EchoingService.echo, None, "satu", "dua")
    assert misfit.payload["error"]["exc_type"] == IncorrectSignature.__name__
    assert misfit.payload["error"]["value"] == str(nameko_says.value)


def test_a_call_never_answered_is_forgotten_after_its_bound(container_factory, amqp_uri):
    """nameko kept every call's wait until its reply came: each call answered 503 at the bound
    (a reply lost in a broker restart, a stopped service) stayed in the caller's memory for the
    life of the process. A wait older than twice the bound is dropped."""
    from nameko.rpc import ReplyListener

    declare_mute_queue(amqp_uri)  # nobody consumes it: no call is ever answered
    caller = container_factory(MuteCaller, {"AMQP_URI": amqp_uri, "RPC_TIMEOUT": 0.2})
    caller.start()
    (listener,) = [e for e in caller.extensions if isinstance(e, ReplyListener)]

    def unanswered() -> set[str]:
        with entrypoint_hook(caller, "ask") as ask, pytest.raises(ServiceUnavailable):
            ask("halo")
        return set(listener._reply_events)

    first = unanswered()
    assert len(first) == 1  # its wait outlives the 503 a while: a late reply finds it
    # calls keep failing; once the first wait is older than twice the bound, a new call drops it
    waiting = wait_until(lambda: (w := unanswered()) and not first & w and w, timeout=10)
    assert len(waiting) <= 3  # the waits of the last 2 × 0.2 s only, not every call's


def test_a_reply_is_serialised_once_and_an_unsendable_result_answered_as_nameko_does(
    container_factory, amqp_uri, monkeypatch
):
    """nameko dumped every result once to check it could be sent, then the publish dumped the
    whole reply again; the reply is dumped once. A result that cannot be dumped still answers
    nameko's ``UnserializableValueError``."""
    from kombu import serialization

    container_factory(EchoingService, {"AMQP_URI": amqp_uri}).start()
    dumped: list = []
    json_codec = serialization.registry._encoders["json"]  # every dumps to JSON goes through it

    def counting(data):
        dumped.append(data)
        return json_codec.encoder(data)

    monkeypatch.setitem(
        serialization.registry._encoders, "json", json_codec._replace(encoder=counting)
    )
    with Connection(amqp_uri) as conn:
        dumped.clear()  # the request's own
        answer = ask_by_hand(conn, "echo", ["sekali"], "call-1")
        assert answer.payload == {"result": "sekali", "error": None}
        assert [d for d in dumped if d != {"args": ["sekali"], "kwargs": {}}] == [answer.payload]
        refusal = ask_by_hand(conn, "unsendable", ["x"], "call-2")
    assert refusal.properties["correlation_id"] == "call-2"
    assert refusal.payload["result"] is None
    assert refusal.payload["error"]["exc_type"] == "UnserializableValueError"
