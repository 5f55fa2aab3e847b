"""What every worker leaves behind, its metrics and its log line, at no more cost than needed:
the same series and the same JSON line, without a metrics lookup per call or thread and caller
details that the line never writes."""

from __future__ import annotations

import io
import json
import logging
import threading
from types import SimpleNamespace

from prometheus_client import REGISTRY

from mpp_chassis import metrics
from mpp_chassis.logs import ContextFilter, json_formatter
from mpp_contracts.errors import NotFound


class Worker:
    """What ``Metrics`` reads of a nameko worker context (hashed by identity, as nameko's)."""

    def __init__(self, method_name: str) -> None:
        self.entrypoint = SimpleNamespace(method_name=method_name)
        self.context_data: dict = {}
        self.args = ()


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_each_worker_is_counted_timed_and_logged_with_its_series_found_once(monkeypatch, caplog):
    provider = metrics.Metrics()
    provider.container = SimpleNamespace(service_name="linesvc")
    provider.setup()
    labelled: list[tuple] = []
    labels = metrics.ENTRYPOINT_CALLS.labels

    def counting_labels(*values):
        labelled.append(values)
        return labels(*values)

    monkeypatch.setattr(metrics.ENTRYPOINT_CALLS, "labels", counting_labels)
    ok = {"service": "linesvc", "entrypoint": "echo", "outcome": "ok"}
    rejected = {**ok, "outcome": "rejected"}
    before = (
        sample("mpp_entrypoint_calls_total", **ok),
        sample("mpp_entrypoint_calls_total", **rejected),
    )
    timed = sample("mpp_entrypoint_seconds_count", service="linesvc", entrypoint="echo")
    caplog.set_level(logging.INFO, logger="mpp.worker")
    for outcome in ("ok", "ok", "rejected", "ok", "rejected"):
        worker = Worker("echo")
        provider.worker_setup(worker)
        error = NotFound("TICKET_NOT_FOUND", "no") if outcome == "rejected" else None
        provider.worker_result(worker, None, (NotFound, error, None) if error else None)
    assert labelled == [("linesvc", "echo", "ok"), ("linesvc", "echo", "rejected")]
    assert sample("mpp_entrypoint_calls_total", **ok) - before[0] == 3
    assert sample("mpp_entrypoint_calls_total", **rejected) - before[1] == 2
    assert sample("mpp_entrypoint_seconds_count", service="linesvc", entrypoint="echo") - timed == 5
    lines = [(r.getMessage(), r.entrypoint, r.outcome) for r in caplog.records]
    assert lines == [("echo ok", "echo", "ok")] * 2 + [("echo rejected", "echo", "rejected")] + [
        ("echo ok", "echo", "ok"),
        ("echo rejected", "echo", "rejected"),
    ]


def test_a_line_carries_what_it_always_did_without_asking_for_the_thread(monkeypatch):
    """LogRecord asked eventlet's green ``current_thread`` (which lists every thread) for a
    thread name the JSON line never writes; so for the process id and the caller's line."""
    for switch in ("logThreads", "logProcesses", "logMultiprocessing", "_srcfile"):
        monkeypatch.setattr(logging, switch, getattr(logging, switch))  # restored afterwards
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(json_formatter())
    handler.addFilter(ContextFilter("linesvc"))
    log = logging.getLogger("mpp.test.worker-line")
    log.addHandler(handler)
    log.propagate = False
    asked: list[str] = []
    current_thread = threading.current_thread

    def counting_current_thread():
        asked.append("thread")
        return current_thread()

    monkeypatch.setattr(threading, "current_thread", counting_current_thread)
    try:
        log.warning("%s %s", "echo", "ok", extra={"entrypoint": "echo", "ms": 1.5})
    finally:
        log.removeHandler(handler)
    line = json.loads(out.getvalue())
    assert set(line) == {
        "ts",
        "level",
        "logger",
        "service",
        "correlation_id",
        "event_id",
        "message",
        "entrypoint",
        "ms",
    }
    assert (line["level"], line["logger"], line["service"], line["message"]) == (
        "WARNING",
        "mpp.test.worker-line",
        "linesvc",
        "echo ok",
    )
    assert asked == []
