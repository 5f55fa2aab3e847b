"""Event handlers that neither lose nor loop on a failing event, and RPC calls that cannot hang.

Handler queues are durable **quorum** queues with a delivery limit and a dead-letter exchange: a
handler that raises has its message returned to the queue (``requeue_on_error``); after
``EVENT_DELIVERY_LIMIT`` redeliveries RabbitMQ moves it to ``mpp.dead-letters`` where
``python -m mpp_chassis.dlq`` lists, inspects and replays it. A queue's type is fixed at its first
declaration, so this choice is made before the first deployment (docs/decisions/0003-events.md).
"""

from __future__ import annotations

import logging
from functools import partial

import eventlet
from kombu import Exchange, Queue
from nameko.amqp.publish import Publisher
from nameko.constants import (
    AMQP_SSL_CONFIG_KEY,
    AMQP_URI_CONFIG_KEY,
    DEFAULT_SERIALIZER,
    LOGIN_METHOD_CONFIG_KEY,
    SERIALIZER_CONFIG_KEY,
)
from nameko.events import BROADCAST, EventHandler
from nameko.exceptions import ContainerBeingKilled
from nameko.rpc import Responder, Rpc, RpcProxy, get_rpc_exchange
from sqlalchemy import exc as sa_exc

from mpp_chassis import context, metrics
from mpp_contracts.envelope import read_envelope
from mpp_contracts.errors import ServiceUnavailable

_log = logging.getLogger(__name__)

DEAD_LETTER_EXCHANGE = "mpp.dlx"
DEAD_LETTER_QUEUE = "mpp.dead-letters"
DEFAULT_DELIVERY_LIMIT = 5


# A database that is down, restarting, out of connections or failing a transaction it asks to
# retry (serialization, deadlock): the request may succeed a moment later. (SQLite reports a
# missing table as an OperationalError too: a database never migrated also answers 503, and its
# traceback is in the worker's log.)
DATABASE_UNAVAILABLE = (sa_exc.OperationalError, sa_exc.TimeoutError, sa_exc.DisconnectionError)
DATABASE_RETRY_AFTER_SECONDS = 2


class _UnconfirmedPublisher(Publisher):
    use_confirms = False


class _ReplyResponder(Responder):
    """Sends an RPC reply without waiting for the broker's confirm. A confirm could not make a
    reply safer: the caller waits for it with a timeout (``RPC_TIMEOUT``, then 503) whatever
    happened to it, and the call's effects are committed before the reply is sent either way.
    Waiting cost the worker a broker round trip per call."""

    publisher_cls = _UnconfirmedPublisher


class DatabaseAwareRpc(Rpc):
    """nameko's RPC entrypoint, with two changes to how a result is answered:

    - a database error that a retry may cure answers :class:`ServiceUnavailable` (the gateway's
      503 with ``Retry-After``) instead of an unexpected error (its 500); the worker has already
      logged the original error with its traceback;
    - the reply is published without a publisher confirm (:class:`_ReplyResponder`).
    """

    def handle_result(self, message, worker_ctx, result, exc_info):
        if exc_info is not None and isinstance(exc_info[1], DATABASE_UNAVAILABLE):
            error = ServiceUnavailable(
                "DATABASE_UNAVAILABLE",
                "the service's database is unavailable or busy; retry",
                {"retry_after": DATABASE_RETRY_AFTER_SECONDS},
            )
            exc_info = (ServiceUnavailable, error, exc_info[2])
        config = self.container.config
        responder = _ReplyResponder(
            config[AMQP_URI_CONFIG_KEY],
            get_rpc_exchange(config),
            config.get(SERIALIZER_CONFIG_KEY, DEFAULT_SERIALIZER),
            message,
            ssl=config.get(AMQP_SSL_CONFIG_KEY),
            login_method=config.get(LOGIN_METHOD_CONFIG_KEY),
        )
        result, exc_info = responder.send_response(result, exc_info)
        self.rpc_consumer.queue_consumer.ack_message(message)  # as nameko's RpcConsumer does
        return result, exc_info


rpc = DatabaseAwareRpc.decorator


def dead_letter_declarations() -> tuple[Exchange, Queue]:
    exchange = Exchange(DEAD_LETTER_EXCHANGE, type="topic", durable=True)
    queue = Queue(
        DEAD_LETTER_QUEUE,
        exchange=exchange,
        routing_key="#",
        durable=True,
        queue_arguments={"x-queue-type": "quorum"},
    )
    return exchange, queue


class ReliableEventHandler(EventHandler):
    """A SERVICE_POOL handler on a quorum queue with a delivery limit and dead lettering.

    The handler method receives the loaded envelope (payload validated, unknown fields dropped).
    """

    def __init__(self, source_service: str, event_type: str, **kwargs) -> None:
        kwargs.setdefault("requeue_on_error", True)
        super().__init__(source_service, event_type, **kwargs)

    def setup(self) -> None:
        super().setup()
        limit = int(self.container.config.get("EVENT_DELIVERY_LIMIT", DEFAULT_DELIVERY_LIMIT))
        dlx, dlq = dead_letter_declarations()
        self.queue = Queue(
            self.queue.name,
            exchange=self.queue.exchange,
            routing_key=self.event_type,
            durable=True,
            auto_delete=False,
            exclusive=False,
            queue_arguments={
                "x-queue-type": "quorum",
                "x-delivery-limit": limit,
                "x-dead-letter-exchange": DEAD_LETTER_EXCHANGE,
            },
        )
        self._dead_letter = (dlx, dlq)

    def start(self) -> None:
        # the dead-letter queue must exist before any message can be dead-lettered into it
        from kombu import Connection

        with Connection(self.container.config["AMQP_URI"]) as conn:
            dlx, dlq = self._dead_letter
            dlq.bind(conn.channel()).declare()
        super().start()

    def handle_message(self, body, message):
        try:
            envelope = read_envelope(body)
        except Exception:
            # a malformed event will never succeed: send it straight to the dead letters
            _log.error("malformed event dead-lettered", extra={"event_type": self.event_type})
            metrics.EVENTS_HANDLED.labels(
                self.container.service_name, self.event_type, "malformed"
            ).inc()
            message.reject(requeue=False)
            return
        context_data = self.unpack_message_headers(message)
        context_data.setdefault(context.CORRELATION_KEY, envelope["correlation_id"])
        handle_result = partial(self.handle_result, message)
        try:
            self.container.spawn_worker(
                self,
                (envelope,),
                {},
                context_data=context_data,
                handle_result=handle_result,
            )
        except ContainerBeingKilled:
            self.queue_consumer.requeue_message(message)

    def handle_result(self, message, worker_ctx, result=None, exc_info=None):
        outcome = "ok" if exc_info is None else "error"
        metrics.EVENTS_HANDLED.labels(self.container.service_name, self.event_type, outcome).inc()
        if exc_info is not None:
            _log.warning(
                "event handler failed; message returned for redelivery",
                extra={"event_type": self.event_type, "error": type(exc_info[1]).__name__},
            )
        return super().handle_result(message, worker_ctx, result, exc_info)


event_handler = ReliableEventHandler.decorator


class DisplayBroadcastHandler(EventHandler):
    """Every replica receives every event (exclusive, auto-delete queue per process)."""

    def __init__(self, source_service: str, event_type: str) -> None:
        super().__init__(
            source_service, event_type, handler_type=BROADCAST, reliable_delivery=False
        )

    def handle_message(self, body, message):
        try:
            envelope = read_envelope(body)
        except Exception:
            self.queue_consumer.ack_message(message)
            return
        super().handle_message(envelope, message)


broadcast_handler = DisplayBroadcastHandler.decorator


class BoundedServiceProxy:
    """Calls another service and gives up after ``timeout`` seconds with ``ServiceUnavailable``."""

    def __init__(self, proxy, service_name: str, timeout: float) -> None:
        self._proxy = proxy
        self._service_name = service_name
        self._timeout = timeout

    def __getattr__(self, method_name: str):
        method = getattr(self._proxy, method_name)

        def call(*args, **kwargs):
            with eventlet.Timeout(self._timeout, False):
                return method(*args, **kwargs)
            raise ServiceUnavailable(
                "SERVICE_UNAVAILABLE",
                f"{self._service_name} did not answer within {self._timeout:g}s",
                {"service": self._service_name, "retry_after": 5},
            )

        return call


class BoundedRpcProxy(RpcProxy):
    """An ``RpcProxy`` whose calls time out (``RPC_TIMEOUT`` seconds, default 5).

    The request message also expires after the timeout, so a service that comes back later does
    not execute a command its caller has already given up on. Subclasses may set
    ``proxy_class`` to a ``BoundedServiceProxy`` subclass (e.g. to time every call).
    """

    proxy_class = BoundedServiceProxy

    def setup(self) -> None:
        self.timeout = float(self.container.config.get("RPC_TIMEOUT", 5))
        self.options.setdefault("expiration", self.timeout)
        super().setup()

    def get_dependency(self, worker_ctx):
        return self.proxy_class(
            super().get_dependency(worker_ctx), self.target_service, self.timeout
        )
