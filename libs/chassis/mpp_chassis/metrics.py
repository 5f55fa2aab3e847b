"""Prometheus metrics every service exposes on its own ``/metrics``."""

from __future__ import annotations

import logging
import time

from nameko.extensions import DependencyProvider
from nameko.web.handlers import HttpRequestHandler
from prometheus_client import Counter, Gauge, Histogram

from mpp_chassis import context

_log = logging.getLogger("mpp.worker")

ENTRYPOINT_CALLS = Counter(
    "mpp_entrypoint_calls_total", "Entry point calls", ["service", "entrypoint", "outcome"]
)
ENTRYPOINT_SECONDS = Histogram(
    "mpp_entrypoint_seconds", "Entry point duration", ["service", "entrypoint"]
)
OUTBOX_BACKLOG = Gauge("mpp_outbox_backlog", "Events stored but not yet confirmed by the broker")
OUTBOX_PUBLISHED = Counter("mpp_outbox_published_total", "Events confirmed by the broker")
OUTBOX_PARKED = Counter(
    "mpp_outbox_parked_total", "Events parked because no queue was bound to them"
)
OUTBOX_PARKED_NOW = Gauge(
    "mpp_outbox_parked_events",
    "Events parked now (no queue took them), waiting for `python -m mpp_chassis.outbox republish`",
)
EVENTS_HANDLED = Counter(
    "mpp_events_handled_total", "Events handled", ["service", "event_type", "outcome"]
)
EVENT_BATCH_SIZE = Histogram(
    "mpp_event_batch_size",
    "Events applied by one worker in one transaction (batching handlers; 1: one by one)",
    ["service", "event_type"],
    buckets=(1, 2, 4, 8, 16, 32, 64),
)
GROUP_COMMIT_SIZE = Histogram(
    "mpp_group_commit_size",
    "Calls of one command handled in one transaction by a group commit (mpp_chassis.grouping)",
    ["service", "command"],
    buckets=(1, 2, 4, 8, 16, 32),
)
EVENT_BATCHES_FAILED = Counter(
    "mpp_event_batches_failed_total",
    "Batches rolled back and handled again one event at a time",
    ["service", "event_type"],
)
EVENT_RETRIES = Counter(
    "mpp_event_retries_total",
    "Failed events sent to wait and be delivered again (backoff)",
    ["service", "event_type"],
)
EVENT_RETRIES_IN_FLIGHT = Gauge(
    "mpp_event_retries_in_flight",
    "Failed events waiting out their backoff (sum over the service's processes: one process "
    "may count a retry out that another sent)",
    ["service", "event_type"],
)
EVENTS_DEAD_LETTERED = Counter(
    "mpp_events_dead_lettered_total",
    "Events moved to mpp.dead-letters once their retries ran out",
    ["service", "event_type"],
)
CONSUMING_SHUT = Gauge(
    "mpp_events_held_for_database",
    "1 while the service holds its events because its database does not answer",
    ["service"],
)
DEAD_LETTERS = Gauge(
    "mpp_dead_letters", "Messages waiting in mpp.dead-letters (python -m mpp_chassis.dlq list)"
)


class Metrics(DependencyProvider):
    """Times every worker of the container, counts its outcome and logs one line per worker with
    its correlation id (and event id for event handlers), so a journey can be followed.

    ``log_http=False`` (the gateway) leaves the line out for HTTP workers: the gateway's access
    log already writes one per request, with the same correlation id, status and duration.
    """

    def __init__(self, *, log_http: bool = True) -> None:
        self.log_http = log_http

    def setup(self) -> None:
        self.started: dict = {}
        # the labelled series of each (entrypoint, outcome), found once: ``labels()`` takes a
        # lock and builds its key on every call, a fifth of what this provider cost per worker
        self._series: dict[tuple[str, str], tuple] = {}

    def worker_setup(self, worker_ctx) -> None:
        self.started[worker_ctx] = time.perf_counter()
        context.correlation_id.set(context.ensure_correlation(worker_ctx.context_data))
        envelope = worker_ctx.args[0] if worker_ctx.args else None
        is_event = isinstance(envelope, dict) and "type" in envelope and "payload" in envelope
        context.event_id.set(envelope.get("id") if is_event else None)

    def worker_result(self, worker_ctx, result=None, exc_info=None) -> None:
        started = self.started.pop(worker_ctx, None)
        name = worker_ctx.entrypoint.method_name
        if exc_info is None:
            outcome = "ok"
        else:
            from mpp_contracts.errors import EXPECTED_ERRORS

            outcome = "rejected" if isinstance(exc_info[1], EXPECTED_ERRORS) else "error"
        series = self._series.get((name, outcome))
        if series is None:
            service = self.container.service_name
            series = self._series[name, outcome] = (
                ENTRYPOINT_CALLS.labels(service, name, outcome),
                ENTRYPOINT_SECONDS.labels(service, name),
            )
        calls, durations = series
        calls.inc()
        seconds = time.perf_counter() - started if started is not None else 0.0
        durations.observe(seconds)
        if not self.log_http and isinstance(worker_ctx.entrypoint, HttpRequestHandler):
            return
        _log.info(
            "%s %s",
            name,
            outcome,
            extra={"entrypoint": name, "outcome": outcome, "ms": round(seconds * 1000, 1)},
        )

    def worker_teardown(self, worker_ctx) -> None:
        self.started.pop(worker_ctx, None)
