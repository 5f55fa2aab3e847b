"""Event handlers that neither lose nor loop on a failing event, and RPC calls that cannot hang.

Handler queues are durable **quorum** queues with a delivery limit and a dead-letter exchange. A
handler that raises has its event delivered again **with backoff** (``EVENT_RETRY_DELAYS``,
seconds, default about 20 minutes in all): a copy goes to the delay queue of its step
(``mpp.retry.<ms>ms``, a quorum queue whose message TTL is the step and whose expired messages
are dead-lettered, at least once, through the default exchange back to the handler's queue), and
only once the broker has confirmed the copy is the delivery acknowledged. So a ten-minute outage
of a database or a provider dead-letters nothing. A handler that fails because its service's
database is unavailable also shuts the service's :class:`ConsumingGate`: from then on events are
held (unacknowledged, at most the consumer's prefetch per queue, so the broker sends no more)
instead of run, until a probe finds the database answering again — an outage does not spend
every waiting event's retries. When the steps run out, the event is published
(confirmed) to ``mpp.dead-letters`` and then acknowledged, where ``python -m mpp_chassis.dlq``
lists, inspects and replays it. ``EVENT_DELIVERY_LIMIT`` stays as the broker's bound on
deliveries that end without an answer (a worker killed mid-event, again and again). A queue's
type is fixed at its first declaration (docs/decisions/0003-quorum-queues-and-dead-letters.md).
"""

from __future__ import annotations

import logging
from functools import partial

import eventlet
from amqp.exceptions import ConnectionError as AmqpConnectionError
from kombu import Connection, Exchange, Queue
from kombu.exceptions import OperationalError as KombuOperationalError
from nameko.amqp.publish import Publisher
from nameko.constants import (
    AMQP_SSL_CONFIG_KEY,
    AMQP_URI_CONFIG_KEY,
    DEFAULT_SERIALIZER,
    LOGIN_METHOD_CONFIG_KEY,
    SERIALIZER_CONFIG_KEY,
)
from nameko.events import EventHandler
from nameko.exceptions import ContainerBeingKilled, deserialize_to_instance
from nameko.extensions import SharedExtension
from nameko.rpc import Rpc, get_rpc_exchange
from sqlalchemy import exc as sa_exc

from mpp_chassis import context, metrics
from mpp_chassis.signatures import SignatureBuiltOnce
from mpp_chassis.transient import ReplyResponder as _ReplyResponder
from mpp_contracts.envelope import read_envelope
from mpp_contracts.errors import REMOTE_ERRORS, ServiceUnavailable

_log = logging.getLogger(__name__)

# A contract error raised by a service arrives at its caller as the same type, not nameko's
# RemoteError (the gateway maps each type to a status). Registered here, where RPC is, so the
# contracts stay data and import no nameko: every RPC caller imports this module.
for _error in REMOTE_ERRORS:
    deserialize_to_instance(_error)

DEAD_LETTER_EXCHANGE = "mpp.dlx"
DEAD_LETTER_QUEUE = "mpp.dead-letters"
DEFAULT_DELIVERY_LIMIT = 5
RETRY_EXCHANGE = "mpp.retry"
# 1 s … 5 min, 1,231 s (20.5 min) in all: a ten-minute outage ends well before the last step
DEFAULT_RETRY_DELAYS = (1, 2, 5, 10, 30, 60, 120, 300, 300, 300, 103)
RETRIES_HEADER = "x-mpp-retries"  # how many backoff steps this copy has been through
DELAY_HEADER = "mpp-delay-ms"  # routes a copy to its delay queue (no "x-": a headers
# exchange leaves x- headers out of its match, and every delay queue would take every copy)
ORIGIN_HEADER = "x-mpp-queue"  # the handler queue the event belongs to (dlq replays there)
REASON_HEADER = "x-mpp-reason"
# the broker's own bookkeeping, not copied onto a retry (x-death would grow with every step)
BROKER_HEADERS = ("x-death", "x-delivery-count")
BROKER_HEADER_PREFIXES = ("x-first-death-", "x-last-death-")


# A database that is down, restarting, out of connections or failing a transaction it asks to
# retry (serialization, deadlock): the request may succeed a moment later. (SQLite reports a
# missing table as an OperationalError too: a database never migrated also answers 503, and its
# traceback is in the worker's log.)
DATABASE_UNAVAILABLE = (sa_exc.OperationalError, sa_exc.TimeoutError, sa_exc.DisconnectionError)
DATABASE_RETRY_AFTER_SECONDS = 2


def answer_for(error: BaseException) -> BaseException:
    """What a caller receives for ``error``: itself, or, for a database error that a retry may
    cure, :class:`ServiceUnavailable` (the gateway's 503 with ``Retry-After``) instead of an
    unexpected error (its 500). Every RPC's error goes through it (:class:`DatabaseAwareRpc`),
    and so does each item's of a batched call (the queue's ``take_tickets``)."""
    if isinstance(error, DATABASE_UNAVAILABLE):
        return ServiceUnavailable(
            "DATABASE_UNAVAILABLE",
            "the service's database is unavailable or busy; retry",
            {"retry_after": DATABASE_RETRY_AFTER_SECONDS},
        )
    return error


class DatabaseAwareRpc(SignatureBuiltOnce, Rpc):
    """nameko's RPC entrypoint; it does not start a request delivered after its caller stopped
    waiting (its ``nameko.deadline``, :mod:`mpp_chassis.calls`), and changes how a result is
    answered:

    - a database error that a retry may cure answers :class:`ServiceUnavailable` (the gateway's
      503 with ``Retry-After``) instead of an unexpected error (its 500); the worker has already
      logged the original error with its traceback;
    - the reply is published transient and without a publisher confirm (:class:`_ReplyResponder`).

    What it reads for every call (the config, the method's signature: :class:`SignatureBuiltOnce`)
    it reads once, in ``setup``.
    """

    def setup(self) -> None:
        super().setup()
        config = self.container.config
        # what nameko's RpcConsumer reads from the config for every reply, read once
        self._reply_args = (
            config[AMQP_URI_CONFIG_KEY],
            get_rpc_exchange(config),
            config.get(SERIALIZER_CONFIG_KEY, DEFAULT_SERIALIZER),
        )
        self._reply_login = {
            "ssl": config.get(AMQP_SSL_CONFIG_KEY),
            "login_method": config.get(LOGIN_METHOD_CONFIG_KEY),
        }
        self._deadline_header = f"{self.header_prefix}.{context.DEADLINE_KEY}"

    def handle_message(self, body, message) -> None:
        late = context.seconds_late((message.headers or {}).get(self._deadline_header))
        if late is not None:
            # its caller was answered 503 already (a delivery held up by a broker restart or a
            # consumer's reconnection): running it now would act where nobody is told
            _log.warning(
                "request not run: its caller stopped waiting",
                extra={"method": self.method_name, "late_seconds": round(late, 3)},
            )
            self.rpc_consumer.queue_consumer.ack_message(message)
            return
        super().handle_message(body, message)

    def handle_result(self, message, worker_ctx, result, exc_info):
        if exc_info is not None and (error := answer_for(exc_info[1])) is not exc_info[1]:
            exc_info = (type(error), error, exc_info[2])
        responder = _ReplyResponder(*self._reply_args, message, **self._reply_login)
        try:
            result, exc_info = responder.send_response(result, exc_info)
        except BROKER_UNAVAILABLE as error:
            # the broker went away between the call and its reply (a restart): the caller's
            # bounded wait answers it 503, and the request's channel is gone with its ack. A
            # reply that cannot be sent must not end the worker's container, and so the process
            _log.warning("reply not sent: broker unavailable", extra={"error": repr(error)})
            return result, exc_info
        self.rpc_consumer.queue_consumer.ack_message(message)  # as nameko's RpcConsumer does
        return result, exc_info


rpc = DatabaseAwareRpc.decorator


def refresh_dead_letters(amqp_uri: str | None) -> None:
    """Set ``mpp_dead_letters`` from a passive declare of the dead-letter queue (cheap, read-only);
    when the broker or the queue is not there, the gauge keeps its last value."""
    if not amqp_uri:
        return
    try:
        with Connection(amqp_uri, connect_timeout=2) as conn:
            declared = conn.channel().queue_declare(queue=DEAD_LETTER_QUEUE, passive=True)
            metrics.DEAD_LETTERS.set(declared.message_count)
    except Exception as exc:  # broker away or no handler ever declared the queue
        _log.debug("dead letters not counted: %s", type(exc).__name__)


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


def retry_delays(config) -> tuple[float, ...]:
    """``EVENT_RETRY_DELAYS``: the backoff steps, comma-separated seconds (unset or empty: the
    defaults, about 20 minutes in all)."""
    raw = config.get("EVENT_RETRY_DELAYS")
    if raw is None:
        return DEFAULT_RETRY_DELAYS
    return tuple(float(part) for part in str(raw).split(",") if part.strip())


def delay_queue(milliseconds: int) -> Queue:
    """The queue a failed event waits ``milliseconds`` in, then goes back (at least once) to the
    queue it came from: its routing key is that queue's name, and expired messages are
    dead-lettered through the default exchange, which routes by queue name."""
    return Queue(
        f"mpp.retry.{milliseconds}ms",
        exchange=Exchange(RETRY_EXCHANGE, type="headers", durable=True),
        binding_arguments={"x-match": "all", DELAY_HEADER: str(milliseconds)},
        durable=True,
        queue_arguments={
            "x-queue-type": "quorum",
            "x-message-ttl": milliseconds,
            "x-dead-letter-exchange": "",
            "x-dead-letter-strategy": "at-least-once",
            "x-overflow": "reject-publish",
        },
    )


def _own_headers(headers: dict | None) -> dict:
    return {
        name: value
        for name, value in (headers or {}).items()
        if name not in BROKER_HEADERS and not name.startswith(BROKER_HEADER_PREFIXES)
    }


class ConsumingGate(SharedExtension):
    """Open while the service's database answers; shut by the first event handler that fails
    because it does not (:data:`DATABASE_UNAVAILABLE`). While it is shut, event handlers hold
    the events they receive instead of running them, and a probe asks the database every
    ``READINESS_PROBE_SECONDS`` (default 1) through each ``Database`` dependency's ``ping``; the
    first answer opens the gate and the held events run. One gate per container."""

    def setup(self) -> None:
        self.interval = float(self.container.config.get("READINESS_PROBE_SECONDS", 1.0))
        self._opened = eventlet.event.Event()
        self._opened.send()
        self.held = 0

    @property
    def shut(self) -> bool:
        return not self._opened.ready()

    def shut_for(self, error: BaseException) -> None:
        if self.shut:
            return
        self._opened = eventlet.event.Event()
        _log.warning(
            "database unavailable: holding events until it answers",
            extra={"error": type(error).__name__},
        )
        metrics.CONSUMING_SHUT.labels(self.container.service_name).set(1)
        self.container.spawn_managed_thread(self._probe)

    def wait_open(self) -> None:
        self.held += 1
        try:
            self._opened.wait()
        finally:
            self.held -= 1

    def _probe(self) -> None:
        probes = [d for d in self.container.dependencies if callable(getattr(d, "ping", None))]
        while self.shut:
            eventlet.sleep(self.interval)
            try:
                for dependency in probes:
                    dependency.ping()
            except Exception as exc:  # still away: ask again later
                _log.debug("database still unavailable: %s", type(exc).__name__)
                continue
            _log.info("database answers again: running held events", extra={"held": self.held})
            metrics.CONSUMING_SHUT.labels(self.container.service_name).set(0)
            self._opened.send()


class ReliableEventHandler(EventHandler):
    """A SERVICE_POOL handler on a quorum queue: failed events come back with backoff, then go
    to the dead letters (see the module's docstring).

    The handler method receives the loaded envelope (payload validated, unknown fields dropped).
    ``routing_key`` binds the queue (named for the type, as always) to another key than the
    type: ``"ticket_completed.#"`` takes every routing of the type (``ticket_completed`` and
    ``ticket_completed.free``), while a handler bound to the type takes only the events published
    with the type itself. A durable queue keeps every binding it was ever given, so a handler
    that narrows its key names the keys it had before in ``unbind``: they are removed at each
    start (removing a binding that is not there changes nothing), and what they routed into the
    queue before is still handled.
    """

    gate = ConsumingGate()

    def __init__(
        self,
        source_service: str,
        event_type: str,
        routing_key: str | None = None,
        unbind: tuple[str, ...] = (),
        **kwargs,
    ) -> None:
        kwargs.setdefault("requeue_on_error", True)
        super().__init__(source_service, event_type, **kwargs)
        self.routing_key = routing_key or event_type
        self.unbind = tuple(key for key in unbind if key != self.routing_key)

    def setup(self) -> None:
        super().setup()
        limit = int(self.container.config.get("EVENT_DELIVERY_LIMIT", DEFAULT_DELIVERY_LIMIT))
        dlx, dlq = dead_letter_declarations()
        self.queue = Queue(
            self.queue.name,
            exchange=self.queue.exchange,
            routing_key=self.routing_key,
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
        config = self.container.config
        self.delays_ms = tuple(max(int(seconds * 1000), 1) for seconds in retry_delays(config))
        self._publisher = Publisher(config["AMQP_URI"], use_confirms=True)

    def start(self) -> None:
        # the dead-letter and delay queues must exist before any message can be sent to them
        with Connection(self.container.config["AMQP_URI"]) as conn:
            channel = conn.channel()
            dlx, dlq = self._dead_letter
            dlq.bind(channel).declare()
            for milliseconds in sorted(set(self.delays_ms)):
                delay_queue(milliseconds).bind(channel).declare()
            if self.unbind:  # declared with its binding first: a new deployment has the queue
                queue = self.queue.bind(channel)
                queue.declare()
                for key in self.unbind:
                    queue.unbind_from(self.queue.exchange, routing_key=key)
        super().start()

    def handle_message(self, body, message):
        envelope = self._read(body, message)
        if envelope is not None:
            self._run_or_hold(envelope, message)

    def _read(self, body, message) -> dict | None:
        """The loaded envelope; None for a malformed event, which will never succeed and is
        sent straight to the dead letters."""
        try:
            return read_envelope(body)
        except Exception:
            _log.error("malformed event dead-lettered", extra={"event_type": self.event_type})
            metrics.EVENTS_HANDLED.labels(
                self.container.service_name, self.event_type, "malformed"
            ).inc()
            message.reject(requeue=False)
            return None

    def _run_or_hold(self, envelope: dict, message) -> None:
        if self.gate.shut:  # hold it, unacknowledged, off the consumer's own thread
            self.container.spawn_managed_thread(partial(self._run_when_open, envelope, message))
            return
        self._run(envelope, message)

    def _run_when_open(self, envelope: dict, message) -> None:
        self.gate.wait_open()
        self._run(envelope, message)

    def _run(self, envelope: dict, message) -> None:
        context_data = self.unpack_message_headers(message)
        context_data.setdefault(context.CORRELATION_KEY, envelope["correlation_id"])
        handle_result = partial(self.handle_result, message)
        try:
            self.container.spawn_worker(
                self,
                self._worker_args(envelope),
                {},
                context_data=context_data,
                handle_result=handle_result,
            )
        except ContainerBeingKilled:
            self.queue_consumer.requeue_message(message)

    def _worker_args(self, envelope: dict) -> tuple:
        """What the handler method is called with for one event."""
        return (envelope,)

    def handle_result(self, message, worker_ctx, result=None, exc_info=None):
        outcome = "ok" if exc_info is None else "error"
        service = self.container.service_name
        metrics.EVENTS_HANDLED.labels(service, self.event_type, outcome).inc()
        steps = int((message.headers or {}).get(RETRIES_HEADER) or 0)
        if steps:  # a retry came back from its delay queue
            metrics.EVENT_RETRIES_IN_FLIGHT.labels(service, self.event_type).dec()
        if exc_info is None:
            return super().handle_result(message, worker_ctx, result, exc_info)
        self.end_transactions(worker_ctx)
        error = type(exc_info[1]).__name__
        if isinstance(exc_info[1], DATABASE_UNAVAILABLE):
            self.gate.shut_for(exc_info[1])
        try:
            if steps < len(self.delays_ms):
                self._send_back_later(message, steps)
                metrics.EVENT_RETRIES.labels(service, self.event_type).inc()
                metrics.EVENT_RETRIES_IN_FLIGHT.labels(service, self.event_type).inc()
                _log.warning(
                    "event handler failed; delivered again later",
                    extra={"event_type": self.event_type, "error": error, "retry": steps + 1},
                )
            else:
                self._dead_letter_now(message, error)
                metrics.EVENTS_DEAD_LETTERED.labels(service, self.event_type).inc()
                _log.error(
                    "event handler failed after every retry; dead-lettered",
                    extra={"event_type": self.event_type, "error": error, "retries": steps},
                )
        except Exception:  # the broker did not take the copy: the original goes back at once
            _log.exception("could not schedule a retry", extra={"event_type": self.event_type})
            return super().handle_result(message, worker_ctx, result, exc_info)
        self.queue_consumer.ack_message(message)  # only after the copy was confirmed
        return result, exc_info

    def end_transactions(self, worker_ctx) -> None:
        """Roll back a failed worker's transactions before the broker is asked anything
        (``Database.end_transaction``)."""
        for dependency in self.container.dependencies:
            end = getattr(dependency, "end_transaction", None)
            if not callable(end):
                continue
            try:
                end(worker_ctx)
            except Exception as exc:  # a lost connection: the worker's teardown closes it
                _log.debug("transaction not ended early: %s", type(exc).__name__)

    def _copy(self, message, **publish) -> None:
        properties = message.properties
        self._publisher.publish(
            message.body,
            serializer=None,
            content_type=properties.get("content_type") or "application/json",
            content_encoding=properties.get("content_encoding") or "utf-8",
            message_id=properties.get("message_id"),
            correlation_id=properties.get("correlation_id"),
            delivery_mode=2,
            mandatory=True,
            **publish,
        )

    def _send_back_later(self, message, steps: int) -> None:
        milliseconds = self.delays_ms[steps]
        headers = {
            **_own_headers(message.headers),
            RETRIES_HEADER: steps + 1,
            DELAY_HEADER: str(milliseconds),
            ORIGIN_HEADER: self.queue.name,
        }
        self._copy(
            message,
            exchange=Exchange(RETRY_EXCHANGE, type="headers", durable=True),
            routing_key=self.queue.name,
            headers=headers,
        )

    def _dead_letter_now(self, message, error: str) -> None:
        headers = {
            **_own_headers(message.headers),
            ORIGIN_HEADER: self.queue.name,
            REASON_HEADER: f"retries_exhausted: {error}",
        }
        headers.pop(DELAY_HEADER, None)
        dlx, _ = self._dead_letter
        self._copy(message, exchange=dlx, routing_key=self.event_type, headers=headers)


event_handler = ReliableEventHandler.decorator


# the broker refused or dropped the connection a call is published on (kombu wraps the socket's
# and amqp's errors as its OperationalError once its publish retries are spent)
BROKER_UNAVAILABLE = (KombuOperationalError, AmqpConnectionError, ConnectionError)
BROKER_RETRY_AFTER_SECONDS = 2
