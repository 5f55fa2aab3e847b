"""Schemathesis over the whole ``/openapi.json`` of a running mall (SQLite), with a mall admin key
and with the agency's own keys.

Every operation, positive and negative data; protected operations with the mall admin key and
with the key of the route's role for the fuzzed agency (agency_admin, officer, display), public
ones without a key; half of the cases on real ids of that agency's resources (agency, service,
counter, ticket, payment, key) so they reach the services' logic, not only an unknown id's 404.

Checks (every one must hold on every case):

- ``not_a_server_error``: no 5xx;
- ``status_code_conformance``: every status answered is documented for the operation;
- ``response_schema_conformance``: every answer is inside its documented schema (errors inside
  the envelope's);
- ``content_type_conformance``: every content type is documented;
- ``negative_data_rejection``: data outside the documented schema (a value over ``maxLength`` or
  ``maximum``, off ``pattern``, of the wrong type, an unknown field) is refused with a 4xx, so the
  bounds the document shows are the bounds that hold.

Left out, and why: ``positive_data_acceptance`` (a schema-valid body may still be refused for
its meaning: a counter's ``service_ids`` must be the agency's active services, a refund cannot
exceed what was paid, a rating needs a real token: rules no schema can state);
``ignored_auth``/``use_after_free``/``ensure_resource_availability`` (stateful checks:
authentication is tested route by route in test_gateway_tenancy_e2e.py). The SSE stream
``GET /v1/display/stream`` never ends an answer: tests/gateway/interface covers it.

Deterministic (``derandomize``). Size: ``MPP_FUZZ_EXAMPLES`` cases per operation, mode and key
(default 3, about 1,000 requests, ≈ 1 min); ``make fuzz`` runs the long one (40).
"""

from __future__ import annotations

import os
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
    negative_data_rejection,
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
    negative_data_rejection,
]
SKIP = {("GET", "/v1/display/stream")}
ADMIN = {"Authorization": f"Bearer {MALL_ADMIN_KEY}"}


def read(url: str, ticket: dict, part: str = ""):
    """GET the ticket (or ``part`` of it) as its holder does: with the access code the kiosk
    gave with it."""
    code = {"code": ticket["access_code"]}
    return requests.get(f"{url}/v1/tickets/{ticket['id']}{part}", params=code, timeout=10)


def bearer(key: str) -> dict:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture(scope="module")
def fuzzed(shared_mall):
    """One agency with a service, a counter, its keys, and a completed ticket's invoice."""
    url = shared_mall.url
    agency = requests.post(
        f"{url}/v1/agencies", headers=ADMIN, json={"code": "FUZZ", "name": "Fuzz"}
    ).json()
    own = bearer(agency["admin_api_key"]["key"])
    keys = {"agency_admin": own}
    ids = {}
    for role in ("officer", "display"):
        issued = requests.post(
            f"{url}/v1/agencies/{agency['id']}/api-keys", headers=own, json={"role": role}
        ).json()
        keys[role] = bearer(issued["key"])
    spare = requests.post(
        f"{url}/v1/agencies/{agency['id']}/api-keys", headers=own, json={"role": "kiosk"}
    ).json()
    service = requests.post(
        f"{url}/v1/agencies/{agency['id']}/services",
        headers=own,
        json={"code": "SVC", "name": "Layanan", "fee_idr": 10000, "sla_minutes": 30, "prefix": "F"},
    ).json()
    counter = requests.post(
        f"{url}/v1/agencies/{agency['id']}/counters",
        headers=own,
        json={"name": "Loket 1", "service_ids": [service["id"]]},
    ).json()
    ticket = requests.post(f"{url}/v1/tickets", json={"service_id": service["id"]}).json()
    officer = keys["officer"]
    assert requests.post(f"{url}/v1/counters/{counter['id']}/call-next", headers=officer).ok
    for action in ("start", "complete"):
        assert requests.post(f"{url}/v1/tickets/{ticket['id']}/{action}", headers=officer).ok
    payment = wait_until(
        lambda: (r := read(url, ticket, "/payment")).ok and r.json(),
        timeout=20,
        message="invoice of the fuzzed agency",
    )
    waiting = requests.post(f"{url}/v1/tickets", json={"service_id": service["id"]}).json()
    ids.update(
        agency=agency["id"],
        service=service["id"],
        counter=counter["id"],
        key_id=spare["id"],
        ticket=waiting["id"],
        payment=payment["id"],
        provider="simulator",
    )
    return {"ids": ids, "keys": keys}


def callers(operation, keys: dict) -> list[dict]:
    """Public: no key and the admin's; protected: the admin's and the role's agency key."""
    if not operation.definition.raw.get("security"):
        return [{}, ADMIN]
    roles = operation.definition.raw.get("description", "")
    own = [keys[r] for r in ("agency_admin", "officer", "display") if f", {r}" in roles]
    return [ADMIN, *own[:1]]


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


def test_every_operation_with_every_key_answers_inside_its_documented_schema(shared_mall, fuzzed):
    url = shared_mall.url
    schema = schemathesis.openapi.from_url(f"{url}/openapi.json")
    # the keys are ours to send (below); a generated Authorization would be replaced by them,
    # and negative_data_rejection would then blame the server for "accepting" it
    schema.config.generation.update(with_security_parameters=False)
    session = requests.Session()
    failures: dict[tuple, str] = {}
    operations = 0
    statuses: list[int] = []
    for result in schema.get_all_operations():
        operation = result.ok()
        if (operation.method.upper(), operation.path) in SKIP:
            continue
        operations += 1
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            strategy = cases(operation, mode, fuzzed["ids"])
            for headers in callers(operation, fuzzed["keys"]):
                statuses += fuzz(operation, strategy, url, headers, session, failures)
    print(f"schemathesis: {operations} operations, {len(statuses)} requests:", Counter(statuses))
    assert operations >= 40
    assert not [s for s in statuses if s >= 500]
    assert not failures, "\n\n".join(
        [", ".join(map(str, key)) for key in failures] + list(failures.values())[:5]
    )
