"""Prometheus metrics every service exposes on its own ``/metrics``."""

from __future__ import annotations

import time

from nameko.extensions import DependencyProvider
from prometheus_client import Counter, Gauge, Histogram

ENTRYPOINT_CALLS = Counter(
    "mpp_entrypoint_calls_total", "Entry point calls", ["service", "entrypoint", "outcome"]
)
ENTRYPOINT_SECONDS = Histogram(
    "mpp_entrypoint_seconds", "Entry point duration", ["service", "entrypoint"]
)
OUTBOX_BACKLOG = Gauge("mpp_outbox_backlog", "Events stored but not yet confirmed by the broker")
OUTBOX_PUBLISHED = Counter("mpp_outbox_published_total", "Events confirmed by the broker")
EVENTS_HANDLED = Counter(
    "mpp_events_handled_total", "Events handled", ["service", "event_type", "outcome"]
)


class Metrics(DependencyProvider):
    """Times every worker of the container and counts its outcome."""

    def setup(self) -> None:
        self.started: dict = {}

    def worker_setup(self, worker_ctx) -> None:
        self.started[worker_ctx] = time.perf_counter()

    def worker_result(self, worker_ctx, result=None, exc_info=None) -> None:
        started = self.started.pop(worker_ctx, None)
        name = worker_ctx.entrypoint.method_name
        service = self.container.service_name
        if exc_info is None:
            outcome = "ok"
        else:
            from mpp_contracts.errors import EXPECTED_ERRORS

            outcome = "rejected" if isinstance(exc_info[1], EXPECTED_ERRORS) else "error"
        ENTRYPOINT_CALLS.labels(service, name, outcome).inc()
        if started is not None:
            ENTRYPOINT_SECONDS.labels(service, name).observe(time.perf_counter() - started)

    def worker_teardown(self, worker_ctx) -> None:
        self.started.pop(worker_ctx, None)
