"""RPC calls that cannot hang, published without a broker round trip.

Every call is bounded (``RPC_TIMEOUT`` seconds, default 5): its caller gets
``ServiceUnavailable`` (the gateway's 503 with ``Retry-After``) when no answer comes in time, and
the request message expires with the bound, so a service that comes back later does not execute a
command its caller has given up on. The message's TTL counts only its time in a broker queue; the
request also carries the instant its caller stops waiting (the ``nameko.deadline`` header, the
earliest of its own bound and the deadline of the work that makes the call), and the service
neither starts nor commits work past it (:class:`mpp_chassis.messaging.DatabaseAwareRpc`,
:meth:`mpp_chassis.db.UnitOfWork.commit`): a request delivered late, after a broker restart or a
consumer's reconnection, is not executed after its caller was answered 503.

Because the caller waits with that bound whatever happens to the request, the request is
published **transient** (delivery mode 1, not written to the broker's store) and **without a
publisher confirm** (no broker round trip before the reply can even be awaited): a request the
broker loses is answered as an unanswered one is, within the bound. What the confirm gave, and
what stands instead (docs/decisions/0041-rpc-requests-unconfirmed.md):

- nameko raised ``UnknownService`` at once for a service that never declared its queue (a
  mandatory publish, returned before its confirm). Without a confirm the return is never read: a
  call to a service that never ran answers ``SERVICE_UNAVAILABLE`` when the bound runs out, as a
  call to a stopped one always did.
- a publish on a connection the broker had closed failed on the confirm's read, and kombu
  reconnected. It still does: py-amqp reads the connection (without waiting) before each
  publish, since kombu asks for ``connection.blocked`` notices, so a close or EOF is seen
  first, the publish reconnects, and a broker that cannot be reached is ``BROKER_UNAVAILABLE``.

Replies are published the same way (:mod:`mpp_chassis.transient`), on pooled connections keyed
by a kombu connection built once per broker address, not once per publish as nameko's
``Publisher`` does, and written with the channel's ``basic_publish``, not kombu's ``Producer``.
A caller consumes its replies on a connection of their own, **without acknowledgements**
(:class:`ReplyConsumer`): a reply is worth nothing once its caller stopped waiting, so the broker
need not hold it until an ack, and the caller sends no ack per call.
"""

from __future__ import annotations

import time
from collections import deque
from functools import partial

import eventlet
from nameko.messaging import QueueConsumer
from nameko.rpc import MethodProxy, ReplyListener, RpcProxy, ServiceProxy

from mpp_chassis.context import DEADLINE_KEY
from mpp_chassis.messaging import BROKER_RETRY_AFTER_SECONDS, BROKER_UNAVAILABLE
from mpp_chassis.transient import TransientPublisher
from mpp_contracts.errors import ServiceUnavailable


class RequestMethodProxy(MethodProxy):
    publisher_cls = TransientPublisher

    def get_message_headers(self, worker_ctx) -> dict:
        """nameko's context headers, with the instant this call's caller stops waiting: the
        bound from now, or the deadline of the work making the call if that comes first."""
        headers = super().get_message_headers(worker_ctx)
        bound = self.publisher.expiration
        if bound:
            name = self._get_header_name(DEADLINE_KEY)
            own = time.time() + float(bound)
            inherited = headers.get(name)
            headers[name] = min(own, inherited) if isinstance(inherited, (int, float)) else own
        return headers


class RequestServiceProxy(ServiceProxy):
    def __getattr__(self, name: str) -> RequestMethodProxy:
        return RequestMethodProxy(
            self.worker_ctx, self.service_name, name, self.reply_listener, **self.options
        )


class BoundedServiceProxy:
    """Calls another service and gives up after ``timeout`` seconds with ``ServiceUnavailable``;
    a broker that cannot take the call (restarting, unreachable) is ``ServiceUnavailable`` too,
    not an internal error: the caller may retry, and the gateway answers 503 with Retry-After."""

    def __init__(self, proxy, service_name: str, timeout: float) -> None:
        self._proxy = proxy
        self._service_name = service_name
        self._timeout = timeout

    def __getattr__(self, method_name: str):
        method = getattr(self._proxy, method_name)

        def call(*args, **kwargs):
            with eventlet.Timeout(self._timeout, False):
                try:
                    return method(*args, **kwargs)
                except BROKER_UNAVAILABLE as exc:
                    raise ServiceUnavailable(
                        "BROKER_UNAVAILABLE",
                        f"the message broker did not take the call to {self._service_name}",
                        {"service": self._service_name, "retry_after": BROKER_RETRY_AFTER_SECONDS},
                    ) from exc
            raise ServiceUnavailable(
                "SERVICE_UNAVAILABLE",
                f"{self._service_name} did not answer within {self._timeout:g}s",
                {"service": self._service_name, "retry_after": 5},
            )

        return call


class ReplyConsumer(QueueConsumer):
    """The queue consumer of a process's RPC replies: nameko's, on a connection of its own, whose
    consumers take deliveries without acknowledgements (``no_ack``).

    nameko consumed replies like requests: acknowledged one by one (a frame to the broker per
    call, and the broker held each reply until it came), each handled on a new worker thread.
    A reply only wakes the call waiting for it, so it is handled on the consumer's own thread,
    and the broker forgets it once delivered. A reply lost with its connection (delivered, not
    yet read) is answered as a lost request is: 503 at the call's bound.
    """

    def get_consumers(self, consumer_cls, channel):
        for provider in self._providers:
            self._consumers[provider] = consumer_cls(
                queues=[provider.queue],
                callbacks=[partial(self.handle_message, provider)],
                accept=self.accept,
                no_ack=True,
            )
        return self._consumers.values()

    def handle_message(self, provider, body, message) -> None:
        provider.handle_message(body, message)  # never blocks: it pops a wait and wakes it


class BoundedReplyListener(ReplyListener):
    """nameko's reply listener, which also forgets the calls whose reply never came. nameko
    keeps a call's wait until its reply arrives: every call answered 503 at the bound (a reply
    lost in a broker restart, a service stopped or never started) stayed in memory for the
    life of the process. A wait is dropped once it is older than twice the bound (a caller
    stops waiting at the bound); a reply arriving later is ignored, as nameko ignores an
    unknown correlation id. Its replies come through a :class:`ReplyConsumer`."""

    queue_consumer = ReplyConsumer()

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._issued: deque[tuple[float, str]] = deque()
        self.retention = 10.0

    def setup(self) -> None:
        super().setup()
        self.retention = 2 * float(self.container.config.get("RPC_TIMEOUT", 5))

    def get_reply_event(self, correlation_id: str):
        now = time.monotonic()
        issued = self._issued
        while issued and issued[0][0] < now:
            self._reply_events.pop(issued.popleft()[1], None)
        issued.append((now + self.retention, correlation_id))
        return super().get_reply_event(correlation_id)

    def handle_message(self, body, message) -> None:
        client_event = self._reply_events.pop(message.properties.get("correlation_id"), None)
        if client_event is not None:  # else a reply after its wait was dropped, ignored
            client_event.send(body)


class BoundedRpcProxy(RpcProxy):
    """An ``RpcProxy`` whose calls time out (``RPC_TIMEOUT`` seconds, default 5), and whose
    requests are published transient and unconfirmed (:class:`TransientPublisher`).

    The request message also expires after the timeout, so a service that comes back later does
    not execute a command its caller has already given up on. Subclasses may set
    ``proxy_class`` to a ``BoundedServiceProxy`` subclass (e.g. to time every call).
    """

    proxy_class = BoundedServiceProxy
    rpc_reply_listener = BoundedReplyListener()

    def setup(self) -> None:
        self.timeout = float(self.container.config.get("RPC_TIMEOUT", 5))
        self.options.setdefault("expiration", self.timeout)
        super().setup()

    def get_dependency(self, worker_ctx):
        requests = RequestServiceProxy(
            worker_ctx, self.target_service, self.rpc_reply_listener, **self.options
        )
        return self.proxy_class(requests, self.target_service, self.timeout)
