"""Idempotency-Key on a real gateway database: a creating request runs once per key and its
answer is replayed; the same key with another body is 409; a 5xx answer releases the key so the
client's retry does the work (docs/api-guide.md, "Idempotency-Key")."""

from __future__ import annotations

import json

import pytest
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request, Response

from mpp_contracts.errors import Conflict
from mpp_gateway import idempotency

SCOPE = "key-1:POST /v1/tickets"


def request(body: dict, key: str = "retry-1") -> Request:
    return Request(
        EnvironBuilder(
            method="POST",
            path="/v1/tickets",
            data=json.dumps(body),
            headers={"Idempotency-Key": key},
            content_type="application/json",
        ).get_environ()
    )


def once(desk, req: Request, answer) -> Response:
    return desk(lambda uow: idempotency.run_once(uow, req, SCOPE, 24, answer))


def test_a_keyed_request_runs_once_and_its_answer_is_replayed(desk):
    calls = []

    def take_ticket() -> Response:
        calls.append(1)
        return Response(json.dumps({"number": f"A-00{len(calls)}"}), status=201)

    first = once(desk, request({"service_id": "s-1"}), take_ticket)
    retry = once(desk, request({"service_id": "s-1"}), take_ticket)

    assert len(calls) == 1
    assert (retry.status_code, retry.get_data()) == (201, first.get_data())
    assert retry.headers["Idempotent-Replayed"] == "true"
    with pytest.raises(Conflict) as reused:
        once(desk, request({"service_id": "s-2"}), take_ticket)
    assert reused.value.code == "IDEMPOTENCY_KEY_REUSED"
    once(desk, request({"service_id": "s-1"}, key="another-key"), take_ticket)
    assert len(calls) == 2  # another key is another request


def test_a_server_error_releases_the_key_for_the_retry(desk):
    answers = iter([Response("{}", status=503), Response('{"ok": true}', status=201)])

    failed = once(desk, request({"service_id": "s-1"}), lambda: next(answers))
    retried = once(desk, request({"service_id": "s-1"}), lambda: next(answers))

    assert failed.status_code == 503
    assert retried.status_code == 201 and "Idempotent-Replayed" not in retried.headers
