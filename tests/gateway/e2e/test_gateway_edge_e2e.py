"""The gateway's edge against one running mall (started once for the module):

1. ``mpp_rpc_call_seconds`` on ``/metrics`` observes every RPC the gateway makes.
2. A service killed with SIGKILL: the request needing it answers 503 with ``Retry-After`` within
   ``RPC_TIMEOUT`` plus a small bound, and succeeds again once the service is restarted
   (runs last: it restarts the rating process).

Schemathesis over the whole ``/openapi.json`` moved to test_gateway_fuzz_e2e.py (with the
agency's keys too); every route x hostile input class: test_gateway_negative_inputs_e2e.py.
"""

from __future__ import annotations

import re
import signal
import time

import pytest
import requests

from tests.support.infra import wait_until

pytestmark = pytest.mark.e2e


def rpc_calls(url: str) -> dict[str, float]:
    text = requests.get(f"{url}/metrics", timeout=5).text
    return {
        service: float(count)
        for service, count in re.findall(
            r'^mpp_rpc_call_seconds_count\{service="(\w+)"\} (\S+)$', text, re.M
        )
    }


def test_every_rpc_the_gateway_makes_is_timed_on_metrics(shared_mall):
    url = shared_mall.url
    before = rpc_calls(url)
    assert requests.get(f"{url}/v1/services").ok  # queue
    assert requests.get(f"{url}/v1/ratings/summary").ok  # rating
    assert requests.get(f"{url}/v1/payments/no-such-payment").status_code == 404  # payment
    after = rpc_calls(url)
    for service in ("queue", "rating", "payment"):
        assert after.get(service, 0) >= before.get(service, 0) + 1, (service, before, after)
    buckets = requests.get(f"{url}/metrics", timeout=5).text
    assert re.search(r'^mpp_rpc_call_seconds_bucket\{le="\+Inf",service="rating"\}', buckets, re.M)


def test_a_killed_service_answers_503_with_retry_after_in_bounded_time_then_recovers(shared_mall):
    url = shared_mall.url
    timeout = float(shared_mall.env_for("gateway", 0)["RPC_TIMEOUT"])
    assert requests.get(f"{url}/v1/ratings/summary").ok
    rating = next(p for p in shared_mall.processes if p.name == "rating")
    rating.stop(signal.SIGKILL)
    assert rating.process.returncode == -signal.SIGKILL

    started = time.monotonic()
    answer = requests.get(f"{url}/v1/ratings/summary", timeout=timeout + 10)
    elapsed = time.monotonic() - started
    assert answer.status_code == 503, answer.text
    assert answer.json()["error"]["code"] == "SERVICE_UNAVAILABLE"
    assert int(answer.headers["Retry-After"]) >= 1
    assert elapsed < timeout + 2, elapsed

    shared_mall.processes.remove(rating)
    shared_mall.start_service("rating").wait_healthy()
    wait_until(
        lambda: requests.get(f"{url}/v1/ratings/summary").status_code == 200,
        timeout=20,
        message="rating answers again after its restart",
    )
