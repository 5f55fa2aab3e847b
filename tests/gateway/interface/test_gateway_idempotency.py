"""Idempotency-Key on creating POSTs, and rate limits per key and per client IP."""

from __future__ import annotations

import eventlet
import pytest
import sqlalchemy as sa

from tests.gateway.interface.conftest import ADMIN_KEY, Gateway

# issuing a key asks the queue whether the agency exists
pytestmark = pytest.mark.usefixtures("agencies_stand_in")

PATH = "/v1/agencies/agency-a/api-keys"


def count_keys(gateway) -> int:
    engine = sa.create_engine(gateway.config["DB_URL"])
    with engine.connect() as conn:
        # the bootstrap key's own row (recorded on first use, to be revocable) is not issued
        issued = "SELECT count(*) FROM api_keys WHERE id NOT LIKE 'bootstrap-%'"
        n = conn.execute(sa.text(issued)).scalar_one()
    engine.dispose()
    return n


def test_same_key_and_body_replays_the_first_answer_and_another_body_conflicts(gateway):
    headers = {"Idempotency-Key": "issue-officer-1"}
    body = {"role": "officer", "label": "Loket 1"}
    first = gateway.request("POST", PATH, ADMIN_KEY, json=body, headers=dict(headers))
    assert first.status_code == 201, first.text
    again = gateway.request("POST", PATH, ADMIN_KEY, json=body, headers=dict(headers))
    assert again.status_code == 201 and again.json() == first.json()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert count_keys(gateway) == 1

    other = gateway.request("POST", PATH, ADMIN_KEY, json={"role": "kiosk"}, headers=dict(headers))
    assert other.status_code == 409
    assert other.json()["error"]["code"] == "IDEMPOTENCY_KEY_REUSED"
    # without the header every call creates
    assert gateway.request("POST", PATH, ADMIN_KEY, json=body).status_code == 201
    assert count_keys(gateway) == 2


def test_a_rejected_request_is_replayed_too_and_a_bad_header_is_refused(gateway):
    headers = {"Idempotency-Key": "bad-role"}
    first = gateway.request("POST", PATH, ADMIN_KEY, json={"role": "x"}, headers=dict(headers))
    again = gateway.request("POST", PATH, ADMIN_KEY, json={"role": "x"}, headers=dict(headers))
    assert first.status_code == again.status_code == 422
    assert again.headers.get("Idempotent-Replayed") == "true"
    too_long = gateway.request(
        "POST", PATH, ADMIN_KEY, json={"role": "officer"}, headers={"Idempotency-Key": "k" * 201}
    )
    assert too_long.status_code == 422 and "Idempotency-Key" in too_long.json()["error"]["details"]


def test_concurrent_duplicates_create_once(gateway):
    body = {"role": "display"}

    def post(_):
        return gateway.request(
            "POST", PATH, ADMIN_KEY, json=body, headers={"Idempotency-Key": "race-1"}
        )

    pool = eventlet.GreenPool(8)
    answers = list(pool.imap(post, range(8)))
    created = [a for a in answers if a.status_code == 201]
    assert created, [a.text for a in answers]
    assert len({a.json()["id"] for a in created}) == 1
    assert all(
        a.status_code == 201 or a.json()["error"]["code"] == "IDEMPOTENCY_IN_PROGRESS"
        for a in answers
    )
    assert count_keys(gateway) == 1


def test_rate_limit_per_key_answers_429_with_retry_after(container_factory, gateway_config):
    from mpp_gateway.service import GatewayService

    gateway_config.update(RATE_LIMIT_PER_MINUTE=3, RATE_LIMIT_PUBLIC_PER_MINUTE=2)
    container_factory(GatewayService, gateway_config).start()
    gw = Gateway(f"http://{gateway_config['WEB_SERVER_ADDRESS']}", gateway_config)
    other_key = gw.request("POST", PATH, ADMIN_KEY, json={"role": "agency_admin"}).json()["key"]
    statuses = [gw.request("GET", PATH, ADMIN_KEY).status_code for _ in range(3)]
    assert statuses == [200, 200, 429]
    limited = gw.request("POST", PATH, ADMIN_KEY, json={"role": "officer"})
    assert limited.status_code == 429 and limited.json()["error"]["code"] == "RATE_LIMITED"
    assert 1 <= int(limited.headers["Retry-After"]) <= 60
    # another key has its own budget
    assert gw.request("GET", PATH, other_key).status_code == 200
    # public routes count per client IP (here the services behind are absent: 503 until limited)
    public = [gw.request("GET", "/v1/agencies").status_code for _ in range(3)]
    assert public[:2] != [429, 429] and public[2] == 429
    # ops endpoints are never limited
    assert all(gw.request("GET", "/healthz").status_code == 200 for _ in range(5))


def test_a_claim_left_by_a_gateway_that_died_mid_request_is_taken_over(gateway):
    """A claim without an answer, older than a few RPC timeouts, was abandoned: a retry does the
    work instead of answering "in progress" until the key expires."""
    headers = {"Idempotency-Key": "abandoned-1"}
    body = {"role": "officer", "label": "Loket 9"}
    first = gateway.request("POST", PATH, ADMIN_KEY, json=body, headers=dict(headers))
    assert first.status_code == 201
    engine = sa.create_engine(gateway.config["DB_URL"])
    with engine.begin() as conn:  # as if the gateway had died after claiming the key
        conn.execute(
            sa.text(
                "UPDATE idempotency_keys SET status = NULL, response = NULL, created_at = :old "
                "WHERE key = 'abandoned-1'"
            ),
            {"old": "2020-01-01 00:00:00.000000"},
        )
        conn.execute(sa.text("DELETE FROM api_keys"))
    engine.dispose()
    retried = gateway.request("POST", PATH, ADMIN_KEY, json=body, headers=dict(headers))
    assert retried.status_code == 201, retried.text
    assert "Idempotent-Replayed" not in retried.headers
    assert count_keys(gateway) == 1


def test_a_fresh_claim_without_an_answer_still_answers_in_progress(gateway):
    headers = {"Idempotency-Key": "in-flight-1"}
    body = {"role": "officer", "label": "Loket 8"}
    first = gateway.request("POST", PATH, ADMIN_KEY, json=body, headers=dict(headers))
    assert first.status_code == 201
    engine = sa.create_engine(gateway.config["DB_URL"])
    with engine.begin() as conn:  # a request that claimed the key a moment ago is still running
        conn.execute(
            sa.text(
                "UPDATE idempotency_keys SET status = NULL, response = NULL "
                "WHERE key = 'in-flight-1'"
            )
        )
    engine.dispose()
    again = gateway.request("POST", PATH, ADMIN_KEY, json=body, headers=dict(headers))
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "IDEMPOTENCY_IN_PROGRESS"
