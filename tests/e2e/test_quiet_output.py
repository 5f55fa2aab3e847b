"""A service's output says what matters: no eventlet banner on start, no warning with a
traceback for an ordinary 4xx (issue 18, item 4)."""

from __future__ import annotations

import json
import logging
import time

import pytest
import requests

from mpp_chassis.logs import ContextFilter

pytestmark = pytest.mark.e2e


def test_an_ordinary_4xx_is_one_info_line_not_a_warning_with_a_traceback(mall_factory):
    mall = mall_factory("sqlite")
    missing = requests.get(f"{mall.url}/v1/tickets/no-such-ticket")
    assert missing.status_code == 404
    deadline = time.monotonic() + 10
    while "get_ticket rejected" not in mall.logs():
        assert time.monotonic() < deadline, "the queue never logged the rejected worker"
        time.sleep(0.2)
    logs = mall.logs()
    assert "error handling worker" not in logs
    assert "Eventlet is deprecated" not in logs and "EventletDeprecationWarning" not in logs


def record(name: str, msg: str, level: int) -> logging.LogRecord:
    return logging.LogRecord(name, level, __file__, 1, msg, (), None)


def test_only_the_expected_error_warning_is_dropped():
    keep = ContextFilter("queue")
    expected = record("nameko.containers", "(expected) error handling worker %s: %s", 30)
    unexpected = record("nameko.containers", "error handling worker %s: %s", 40)
    other = record("nameko.containers", "killing %s active workers(s)", 30)
    assert not keep.filter(expected)
    assert keep.filter(unexpected) and keep.filter(other)


def test_a_gateway_request_is_one_access_line_and_the_queue_logs_its_worker(mall_factory):
    """The gateway writes one line per request (its access log); the per-worker line of the
    chassis would say it twice. A service behind it still logs its worker, with the same
    correlation id, so the journey can be followed."""
    mall = mall_factory("sqlite")
    answer = requests.get(f"{mall.url}/v1/tickets/no-such-ticket")
    request_id = answer.headers["X-Request-ID"]
    deadline = time.monotonic() + 10
    while "get_ticket rejected" not in mall.logs():
        assert time.monotonic() < deadline, "the queue never logged the rejected worker"
        time.sleep(0.2)

    def lines(name: str) -> list[dict]:
        text = (mall.log_dir / f"{name}-0.log").read_text()
        found = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
        return [r for r in found if r.get("correlation_id") == request_id]

    assert [r["logger"] for r in lines("gateway")] == ["mpp.access"]
    assert [r["message"] for r in lines("queue")] == ["get_ticket rejected"]
