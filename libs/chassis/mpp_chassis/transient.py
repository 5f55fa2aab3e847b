"""Publishing the two halves of an RPC, the request (:mod:`mpp_chassis.calls`) and the reply
(:class:`mpp_chassis.messaging.DatabaseAwareRpc`): messages worth something only while their
caller waits, within its bound (``RPC_TIMEOUT``).

So they are published **transient** (delivery mode 1: the broker does not write them to its
store, although the ``rpc-<service>`` and reply queues are durable) and **without a publisher
confirm** (no broker round trip per publish). A message the broker loses is answered as an
unanswered call always was: 503 when the bound runs out
(docs/decisions/0041-rpc-requests-unconfirmed.md).

The kombu connection that keys the pool of their connections is built once per broker address,
not once per publish as nameko's ``Publisher`` does, and a publish writes its message with the
channel's ``basic_publish`` rather than through kombu's ``Producer`` (:class:`TransientPublisher`).
"""

from __future__ import annotations

import sys

from kombu import Connection
from kombu.compression import compress
from kombu.entity import maybe_delivery_mode
from kombu.pools import connections
from kombu.serialization import dumps, registry
from nameko.amqp.publish import Publisher
from nameko.constants import DEFAULT_TRANSPORT_OPTIONS, NON_PERSISTENT
from nameko.exceptions import UnserializableValueError, serialize
from nameko.rpc import Responder

_TEMPLATES: dict[tuple, Connection] = {}


def _pool_key(amqp_uri: str, ssl, login_method) -> Connection:
    """The connection that keys this broker's pool of connections for unconfirmed publishes
    (kombu clones it for the pool; it is never connected itself)."""
    key = (amqp_uri, repr(ssl), login_method)
    template = _TEMPLATES.get(key)
    if template is None:
        options = {**DEFAULT_TRANSPORT_OPTIONS, "confirm_publish": False}
        template = Connection(
            amqp_uri, transport_options=options, ssl=ssl, login_method=login_method
        )
        _TEMPLATES[key] = template
    return template


class _Publication:
    """One message for ``basic_publish`` on a pooled connection, in the shape kombu's
    ``Connection.ensure`` retries: after a reconnection it hands :meth:`revive` the new
    channel and calls :meth:`send` again (the contract kombu's ``Producer`` fulfils)."""

    __slots__ = ("connection", "channel", "message", "exchange", "routing_key", "failure")

    def __init__(self, connection, message: tuple, exchange: str, routing_key: str) -> None:
        self.connection = connection
        self.channel = None
        self.message = message
        self.exchange = exchange
        self.routing_key = routing_key
        self.failure: BaseException | None = None

    def revive(self, channel) -> None:
        self.channel = channel

    def send(self) -> None:
        if self.failure is not None:  # the first attempt's, for ``ensure`` to handle
            failure, self.failure = self.failure, None
            raise failure
        if self.channel is None:
            self.channel = self.connection.default_channel
        self.channel.basic_publish(
            self.channel.prepare_message(*self.message),
            exchange=self.exchange,
            routing_key=self.routing_key,
        )


class TransientPublisher(Publisher):
    """nameko's ``Publisher`` for RPC messages: transient, unconfirmed, never ``mandatory`` (a
    return is only ever read while waiting for a confirm).

    Arguments are merged as nameko merges them and the message is what kombu's
    ``Producer.publish`` makes of them (serialised, ``expiration`` in milliseconds, the other
    arguments as properties), written with the channel's ``basic_publish`` on a connection of
    kombu's pool for this broker (one greenlet's at a time). kombu's producer pool re-bound a
    producer and its exchange to a channel on every publish, and checked what to declare
    (nothing, for RPC messages: nameko's ``declare`` is refused here). A publish that fails is
    handed to kombu's ``Connection.ensure`` as the first attempt it would have made: a dropped
    connection is replaced and the message sent again, within ``retry_policy``, as
    ``Producer.publish`` does; a publish that succeeds skips building that wrapper (~4 µs)."""

    use_confirms = False
    delivery_mode = NON_PERSISTENT

    def publish(self, payload, **kwargs) -> None:
        kwargs.pop("mandatory", None)
        headers = {
            **self.publish_kwargs.get("headers", {}),
            **kwargs.pop("headers", {}),
            **kwargs.pop("extra_headers", {}),
        }
        options = {**self.publish_kwargs, **kwargs}  # publish-time arguments win, as in nameko
        options.pop("headers", None)
        if self.declare or options.pop("declare", None):
            raise TypeError("a transient RPC message declares nothing: its exchange exists")
        exchange = options.pop("exchange", None)
        routing_key = options.pop("routing_key", "")
        retry = options.pop("retry", self.retry)
        retry_policy = options.pop("retry_policy", self.retry_policy)
        priority = options.pop("priority", self.priority)
        expiration = options.pop("expiration", self.expiration)
        if expiration is not None:
            options["expiration"] = str(int(expiration * 1000))
        options["delivery_mode"] = maybe_delivery_mode(
            options.get("delivery_mode", self.delivery_mode)
        )
        content_type = options.pop("content_type", None)
        content_encoding = options.pop("content_encoding", None)
        serializer = options.pop("serializer", self.serializer)
        compression = options.pop("compression", self.compression)
        if not content_type:
            content_type, content_encoding, payload = dumps(payload, serializer)
        elif isinstance(payload, str):  # already serialised: encoded as kombu encodes it
            content_encoding = content_encoding or "utf-8"
            payload = payload.encode(content_encoding)
        elif not content_encoding:
            content_encoding = "binary"
        if compression:
            payload, headers["compression"] = compress(payload, compression)
        message = (payload, priority, content_type, content_encoding, headers, options)
        name = getattr(exchange, "name", exchange) or ""
        pool = connections[_pool_key(self.amqp_uri, self.ssl, self.login_method)]
        with pool.acquire(block=True) as connection:
            publication = _Publication(connection, message, name, routing_key)
            try:
                publication.send()
            except Exception as failure:
                if not retry:
                    raise
                publication.failure = failure
                connection.ensure(publication, publication.send, **retry_policy)()


class ReplyResponder(Responder):
    """nameko's ``Responder`` (payload, serializer, ``reply_to`` routing and correlation id
    unchanged) with the publish of :class:`TransientPublisher`: the reply
    is sent transient and without a confirm, on a pooled connection found without building a
    kombu connection. A reply is worth something only while its caller waits, and the caller waits
    with a bound (``RPC_TIMEOUT``, then 503) whatever happens to it; the call's effects are
    committed before the reply is sent either way (docs/decisions/0041-rpc-requests-unconfirmed.md).
    """

    publisher_cls = TransientPublisher

    def send_response(self, result, exc_info):
        """nameko's ``send_response`` with the reply serialised once: nameko dumps ``result`` to
        check it can be sent, then the publish dumps the whole reply again. Here the reply is
        dumped once and published as that body; a result that cannot be serialised is answered
        as nameko answers it (``UnserializableValueError``, and the worker sees that error)."""
        error = None if exc_info is None else serialize(exc_info[1])
        serializer = registry.type_to_name[self.message.properties["content_type"]]
        try:
            body = dumps({"result": result, "error": error}, serializer)
        except Exception:
            exc_info = sys.exc_info()
            error = serialize(UnserializableValueError(result))  # always serialisable
            result = None
            body = dumps({"result": result, "error": error}, serializer)
        content_type, content_encoding, payload = body
        publisher = self.publisher_cls(self.amqp_uri, ssl=self.ssl, login_method=self.login_method)
        publisher.publish(
            payload,
            content_type=content_type,  # already serialised: kombu sends the body as it is
            content_encoding=content_encoding,
            exchange=self.exchange,
            routing_key=self.message.properties["reply_to"],
            correlation_id=self.message.properties.get("correlation_id"),
        )
        return result, exc_info
