"""Event handlers that apply the deliveries already at hand in one transaction.

A :class:`ReliableEventHandler` runs one worker, one transaction, one commit and one acknowledgement
per event. Under load the consumer's prefetch (``max_workers`` per queue) already holds several
events of the same type; a :class:`BatchEventHandler` takes up to ``EVENT_BATCH_SIZE`` (50) of
them and spawns **one** worker, whose method receives the list of envelopes, claims each event id
(``UnitOfWork.claimed``) and applies it in the same unit of work, then commits once. Every event
of the batch is acknowledged only after that commit returned: a crash before it redelivers them
all, and the claims that committed with the effects make a redelivery after it change nothing.

Nothing waits for a batch to fill by default: the first delivery yields once
(``EVENT_BATCH_WAIT_MS``, default 0), so the deliveries the consumer has already read from the
socket join it, and whatever arrives later makes the next batch. A quiet service therefore sees
batches of one and the latency it had.

When a batch fails (any exception), its transaction is rolled back at once and each of its
events is handled again **alone**, through the one-by-one path of :class:`ReliableEventHandler`
with its backoff, dead letters and metrics: a poison event is isolated and fails alone, the
others are applied. A batch that failed because the database is unavailable shuts the
:class:`~mpp_chassis.messaging.ConsumingGate` first, so its events are
held until the database answers instead of spending retries. An event that comes back from a
delay queue (it failed before) is handled alone at once, so it cannot fail a batch again.

``mpp_events_handled_total`` counts each event; ``mpp_event_batch_size`` shows how many events a
worker applied together. See docs/decisions/0005-batched-event-handling.md.
"""

from __future__ import annotations

import logging
from functools import partial

import eventlet
from nameko.exceptions import ContainerBeingKilled

from mpp_chassis import context, metrics
from mpp_chassis.messaging import DATABASE_UNAVAILABLE, RETRIES_HEADER, ReliableEventHandler

_log = logging.getLogger(__name__)

DEFAULT_BATCH_SIZE = 50
DEFAULT_BATCH_WAIT_MS = 0.0


class BatchEventHandler(ReliableEventHandler):
    """A :class:`ReliableEventHandler` whose method receives a **list** of envelopes, applies
    them in one transaction (claiming each id) and commits once; see the module's docstring.

    One by one (a batch's fallback, a retry, ``EVENT_BATCH_SIZE=1``) the method receives a list
    of one, so a handler has one shape whatever the load.
    """

    def setup(self) -> None:
        super().setup()
        config = self.container.config
        self.batch_size = max(int(config.get("EVENT_BATCH_SIZE", DEFAULT_BATCH_SIZE)), 1)
        self.batch_wait = float(config.get("EVENT_BATCH_WAIT_MS", DEFAULT_BATCH_WAIT_MS)) / 1000
        self._waiting: list[tuple[dict, object]] = []
        self._gathering = False

    def handle_message(self, body, message):
        # nameko runs this in a thread of its own for each delivery, after the consumer has
        # dispatched every delivery already read: the first becomes the batch's gatherer
        envelope = self._read(body, message)
        if envelope is None:
            return
        retried = int((message.headers or {}).get(RETRIES_HEADER) or 0)
        if retried or self.batch_size == 1 or self.gate.shut:
            self._run_or_hold(envelope, message)
            return
        self._waiting.append((envelope, message))
        if self._gathering:
            return
        self._gathering = True
        try:
            eventlet.sleep(self.batch_wait)  # 0: yield once, the deliveries at hand queue up
            while self._waiting:
                batch = self._waiting[: self.batch_size]
                del self._waiting[: self.batch_size]
                self._dispatch(batch)  # may wait for a free worker, while more gather
        finally:
            self._gathering = False

    def _worker_args(self, envelope: dict) -> tuple:
        return ([envelope],)

    def _dispatch(self, batch: list[tuple[dict, object]]) -> None:
        if len(batch) == 1 or self.gate.shut:
            for envelope, message in batch:
                self._run_or_hold(envelope, message)
            return
        first = batch[0][1]
        context_data = self.unpack_message_headers(first)
        # each event's own correlation id is set while it is applied (UnitOfWork.claimed)
        context_data.pop(context.CORRELATION_KEY, None)
        try:
            self.container.spawn_worker(
                self,
                ([envelope for envelope, _ in batch],),
                {},
                context_data=context_data,
                handle_result=partial(self.handle_batch_result, batch),
            )
        except ContainerBeingKilled:
            for _, message in batch:
                self.queue_consumer.requeue_message(message)

    def handle_result(self, message, worker_ctx, result=None, exc_info=None):
        if exc_info is None:  # one event alone, applied
            service = self.container.service_name
            metrics.EVENT_BATCH_SIZE.labels(service, self.event_type).observe(1)
        return super().handle_result(message, worker_ctx, result, exc_info)

    def handle_batch_result(self, batch, worker_ctx, result=None, exc_info=None):
        service = self.container.service_name
        if exc_info is None:
            metrics.EVENT_BATCH_SIZE.labels(service, self.event_type).observe(len(batch))
            handled = metrics.EVENTS_HANDLED.labels(service, self.event_type, "ok")
            for _, message in batch:  # the commit has returned: every event of it is applied
                handled.inc()
                self.queue_consumer.ack_message(message)
            return result, exc_info
        self.end_transactions(worker_ctx)  # rolled back: the events' claims are free again
        error = exc_info[1]
        metrics.EVENT_BATCHES_FAILED.labels(service, self.event_type).inc()
        _log.warning(
            "event batch failed; its events are handled one by one",
            extra={
                "event_type": self.event_type,
                "error": type(error).__name__,
                "size": len(batch),
            },
        )
        if isinstance(error, DATABASE_UNAVAILABLE):
            self.gate.shut_for(error)  # its events are held, not spent, until the database answers
        # off this worker's thread: a worker waiting for a free worker could wait for itself
        self.container.spawn_managed_thread(partial(self._one_by_one, batch))
        return result, exc_info

    def _one_by_one(self, batch: list[tuple[dict, object]]) -> None:
        for envelope, message in batch:
            self._run_or_hold(envelope, message)


batch_event_handler = BatchEventHandler.decorator
