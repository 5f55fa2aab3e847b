"""The gateway's edge against one running mall (started once for the module):

1. Schemathesis over the whole ``/openapi.json``: no 5xx, every status code documented, every
   answer inside its own schema (and content type).
2. ``mpp_rpc_call_seconds`` on ``/metrics`` observes every RPC the gateway makes.
3. A service killed with SIGKILL: the request needing it answers 503 with ``Retry-After`` within
   ``RPC_TIMEOUT`` plus a small bound, and succeeds again once the service is restarted
   (runs last: it restarts the rating process).

Protected operations are called with the mall admin key, public ones without any key. Half of
the cases use real ids of one agency's resources (agency, service, counter, ticket, payment, key)
so they reach the services' logic, not only the 404 of an unknown id. Deterministic
(``derandomize``); size with ``MPP_FUZZ_EXAMPLES`` (cases per operation and mode, default 3).
The larger documented run: docs/api-guide.md "Fuzzing".
"""

from __future__ import annotations

import os
import re
import signal
import time
from collections import Counter

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.support.infra import wait_until
from tests.support.mall import MALL_ADMIN_KEY

pytestmark = pytest.mark.e2e

EXAMPLES = int(os.environ.get("MPP_FUZZ_EXAMPLES", "3"))
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    response_schema_conformance,
    content_type_conformance,
]
# an endless SSE answer: tests/gateway/interface/test_gateway_display_stream.py covers it
SKIP = {("GET", "/v1/display/stream")}
ADMIN = {"Authorization": f"Bearer {MALL_ADMIN_KEY}"}


@pytest.fixture(scope="module")
def real_ids(shared_mall):
    """One agency with a service, a counter, an officer key, and a completed ticket's invoice."""
    url = shared_mall.url
    agency = requests.post(
        f"{url}/v1/agencies", headers=ADMIN, json={"code": "FUZZ", "name": "Fuzz"}
    ).json()
    service = requests.post(
        f"{url}/v1/agencies/{agency['id']}/services",
        headers=ADMIN,
        json={"code": "SVC", "name": "Layanan", "fee_idr": 10000, "sla_minutes": 30, "prefix": "F"},
    ).json()
    counter = requests.post(
        f"{url}/v1/agencies/{agency['id']}/counters",
        headers=ADMIN,
        json={"name": "Loket 1", "service_ids": [service["id"]]},
    ).json()
    key = requests.post(
        f"{url}/v1/agencies/{agency['id']}/api-keys", headers=ADMIN, json={"role": "officer"}
    ).json()
    officer = {"Authorization": f"Bearer {key['key']}"}
    ticket = requests.post(f"{url}/v1/tickets", json={"service_id": service["id"]}).json()
    assert requests.post(f"{url}/v1/counters/{counter['id']}/call-next", headers=officer).ok
    for action in ("start", "complete"):
        assert requests.post(f"{url}/v1/tickets/{ticket['id']}/{action}", headers=officer).ok
    payment = wait_until(
        lambda: (r := requests.get(f"{url}/v1/tickets/{ticket['id']}/payment")).ok and r.json(),
        timeout=20,
        message="invoice of the fuzzed agency",
    )
    waiting = requests.post(f"{url}/v1/tickets", json={"service_id": service["id"]}).json()
    return {
        "agency": agency["id"],
        "service": service["id"],
        "counter": counter["id"],
        "key_id": key["id"],
        "ticket": waiting["id"],
        "payment": payment["id"],
        "provider": "simulator",
    }


def cases(operation, mode, real_ids):
    generated = operation.as_strategy(mode)
    names = set(operation.path_parameters.schema.get("properties", {}))
    known = {name: value for name, value in real_ids.items() if name in names}
    if not known:
        return generated
    return st.one_of(generated, operation.as_strategy(mode, path_parameters=known))


def fuzz(operation, strategy, url, headers, session, failures) -> list[int]:
    sent = []

    @settings(
        max_examples=EXAMPLES,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy)
    def run(case):
        response = case.call(base_url=url, headers=headers, session=session, timeout=20)
        sent.append(response.status_code)
        try:
            case.validate_response(response, checks=CHECKS, headers=headers)
        except (FailureGroup, Exception) as exc:  # collect every failing case, do not shrink
            kind = str(exc).split("\n- ", 1)[-1].split("\n", 1)[0]
            failures.setdefault((operation.label, response.status_code, kind), str(exc))

    try:
        run()
    except Unsatisfiable:  # negative mode of an operation with nothing to make invalid
        pass
    return sent


def test_every_operation_answers_documented_statuses_inside_its_schema(shared_mall, real_ids):
    url = shared_mall.url
    schema = schemathesis.openapi.from_url(f"{url}/openapi.json")
    session = requests.Session()
    failures: dict[tuple, str] = {}
    operations = 0
    statuses: list[int] = []
    for result in schema.get_all_operations():
        operation = result.ok()
        if (operation.method.upper(), operation.path) in SKIP:
            continue
        operations += 1
        public = not operation.definition.raw.get("security")
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            strategy = cases(operation, mode, real_ids)
            statuses += fuzz(operation, strategy, url, ADMIN, session, failures)
            if public:
                statuses += fuzz(operation, strategy, url, {}, session, failures)
    print(f"schemathesis: {operations} operations, {len(statuses)} requests:", Counter(statuses))
    assert operations >= 40
    assert not failures, "\n\n".join(
        [", ".join(map(str, key)) for key in failures] + list(failures.values())[:5]
    )


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
