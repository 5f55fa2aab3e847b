"""A service's output says what matters: no eventlet banner on start, no warning with a
traceback for an ordinary 4xx (issue 18, item 4)."""

from __future__ import annotations

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
