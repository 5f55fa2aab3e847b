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

from kombu import Connection
from kombu.pools import producers
from nameko.amqp.publish import Publisher
from nameko.constants import DEFAULT_TRANSPORT_OPTIONS, NON_PERSISTENT

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
