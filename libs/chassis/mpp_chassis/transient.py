"""Publishing the two halves of an RPC, the request (:mod:`mpp_chassis.calls`) and the reply
(:class:`mpp_chassis.messaging.DatabaseAwareRpc`): messages worth something only while their
caller waits, within its bound (``RPC_TIMEOUT``).

So they are published **transient** (delivery mode 1: the broker does not write them to its
store, although the ``rpc-<service>`` and reply queues are durable) and **without a publisher
confirm** (no broker round trip per publish). A message the broker loses is answered as an
unanswered call always was: 503 when the bound runs out
(docs/decisions/0041-rpc-requests-unconfirmed.md).

The kombu connection that keys the pool of unconfirmed producers is built once per broker
address, not once per publish as nameko's ``Publisher`` does.
"""

from __future__ import annotations

import sys

from kombu import Connection
from kombu.pools import producers
from kombu.serialization import dumps, registry
from nameko.amqp.publish import Publisher
from nameko.constants import DEFAULT_TRANSPORT_OPTIONS, NON_PERSISTENT
from nameko.exceptions import UnserializableValueError, serialize
from nameko.rpc import Responder

_TEMPLATES: dict[tuple, Connection] = {}


def _pool_key(amqp_uri: str, ssl, login_method) -> Connection:
    """The connection that keys this broker's pool of unconfirmed producers (kombu clones it for
    the pool; it is never connected itself)."""
    key = (amqp_uri, repr(ssl), login_method)
    template = _TEMPLATES.get(key)
    if template is None:
        options = {**DEFAULT_TRANSPORT_OPTIONS, "confirm_publish": False}
        template = Connection(
            amqp_uri, transport_options=options, ssl=ssl, login_method=login_method
        )
        _TEMPLATES[key] = template
    return template


class TransientPublisher(Publisher):
    """nameko's ``Publisher`` for RPC messages: transient, unconfirmed, never ``mandatory`` (a
    return is only ever read while waiting for a confirm), on a pooled producer found without
    building a connection. Publish arguments are merged as nameko merges them."""

    use_confirms = False
    delivery_mode = NON_PERSISTENT

    def publish(self, payload, **kwargs) -> None:
        kwargs.pop("mandatory", None)
        options = dict(self.publish_kwargs)
        headers = {
            **options.pop("headers", {}),
            **kwargs.pop("headers", {}),
            **kwargs.pop("extra_headers", {}),
        }
        sent = {
            "delivery_mode": self.delivery_mode,
            "priority": self.priority,
            "expiration": self.expiration,
            "serializer": self.serializer,
            "compression": self.compression,
            "retry": self.retry,
            "retry_policy": self.retry_policy,
            **options,
            **kwargs,  # publish-time arguments win, as in nameko
        }
        pool = producers[_pool_key(self.amqp_uri, self.ssl, self.login_method)]
        with pool.acquire(block=True) as producer:
            producer.publish(payload, headers=headers, mandatory=False, **sent)


class ReplyResponder(Responder):
    """nameko's ``Responder`` (payload, serializer, ``reply_to`` routing and correlation id
    unchanged) with the publish of :class:`TransientPublisher`: the reply
    is sent transient and without a confirm, on a pooled producer found without building a kombu
    connection. A reply is worth something only while its caller waits, and the caller waits
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
