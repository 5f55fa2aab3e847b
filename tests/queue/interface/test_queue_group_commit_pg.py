"""Group commit through the real queue service on PostgreSQL (issue 20, item 2): 50 take-tickets
sent at once across three lines with quotas, then the same 50 one at a time to a service with
grouping off, on a fresh database. Both must give the same numbers, refusals and events."""

from __future__ import annotations

import json
from collections import Counter

import pytest
from nameko.standalone.rpc import ClusterRpcProxy
from sqlalchemy import select

from mpp_chassis.grouping import GroupCommit
from mpp_chassis.migrate import upgrade
from mpp_queue import usecases
from tests.queue.usecases.conftest import OUTBOX, VALID_NIK, Floor
from tests.support.mall import free_port

pytestmark = pytest.mark.postgres

LINES = {"A": 12, "B": 8, "C": None}  # prefix: daily quota
TWIN_KEY = "f" * 64


def plan() -> list[tuple[str, dict, str | None]]:
    """(line, body, request key): 20 to A, 14 to B (more than their quotas), 12 to C of which
    two carry invalid NIKs and two are one keyed request arriving twice, and 4 to no service."""
    requests = []
    for i in range(20):
        requests.append(("A", {"nik": VALID_NIK} if i % 3 == 0 else {}, None))
    requests += [("B", {}, None) for _ in range(14)]
    # priorities on the line without a quota: which of a full line's requests win depends on
    # the order concurrent calls reach the service, so a priority there made the comparison flaky
    requests += [("C", {"priority": "elderly"} if i % 4 == 0 else {}, None) for i in range(8)]
    requests += [("C", {"nik": "3171014506900"}, None), ("C", {"nik": "12"}, None)]
    requests += [("C", {}, TWIN_KEY), ("C", {}, TWIN_KEY)]
    requests += [("?", {}, None)] * 4
    order = list(range(len(requests)))  # interleave the lines as kiosks would
    order = order[0::3] + order[1::3] + order[2::3]
    return [requests[i] for i in order]


def start_queue(container_factory, amqp_uri, pg_url_factory, name: str, window_ms: float):
    url = pg_url_factory(f"mpp_queue_{name}")
    upgrade("queue", url)
    floor = Floor(url, usecases.Settings(nik_hash_key="group-key"))
    agency = floor("register_agency", {"code": "DUKCAPIL", "name": "Dukcapil"}, now=False)
    ids = {"?": "00000000-0000-0000-0000-000000000000"}
    for prefix, quota in LINES.items():
        body = {"code": f"S{prefix}", "name": prefix, "fee_idr": 0, "sla_minutes": 60}
        body |= {"prefix": prefix, "daily_quota": quota}
        ids[prefix] = floor("plug_service", agency["id"], body, now=False)["id"]
    config = {
        "AMQP_URI": amqp_uri,
        "DB_URL": url,
        "WEB_SERVER_ADDRESS": f"127.0.0.1:{free_port()}",
        "MALL_ID": "mpp-test",
        "NIK_HASH_KEY": "group-key",
        "OUTBOX_POLL_SECONDS": 60,
        "GROUP_COMMIT_MS": window_ms,
        "GROUP_COMMIT_SIZE": 16,
        "max_workers": 20,
    }
    from mpp_queue.service import QueueService

    container = container_factory(QueueService, config)
    container.start()
    return container, floor, ids


def outcome(reply) -> tuple:
    try:
        ticket = reply.result()
    except Exception as exc:  # the contracts' error types, registered by the chassis
        return ("error", getattr(exc, "code", type(exc).__name__))
    return ("ticket", ticket["number"], ticket["id"])


def issued_events(floor: Floor) -> list[dict]:
    with floor.engine.connect() as conn:
        bodies = conn.execute(select(OUTBOX.c.body).order_by(OUTBOX.c.seq)).scalars().all()
    return [e for e in map(json.loads, bodies) if e["type"] == "ticket_issued"]


def summary(outcomes: list[tuple], floor: Floor) -> dict:
    events = issued_events(floor)
    numbers: dict[str, list] = {}
    for kind, *rest in outcomes:
        if kind == "ticket":
            numbers.setdefault(rest[0].split("-")[0], set()).add(rest[0])
    return {
        "numbers": {line: sorted(found) for line, found in numbers.items()},
        "errors": Counter(rest[0] for kind, *rest in outcomes if kind == "error"),
        "answered": len(outcomes),
        # which caller drew which number may differ; what was issued may not
        "event_numbers": sorted(
            (e["payload"]["service_code"], e["payload"]["number"]) for e in events
        ),
        "event_priorities": Counter(
            (e["payload"]["service_code"], e["payload"]["priority"]) for e in events
        ),
        "event_fields": {tuple(sorted(e["payload"])) for e in events},
        "event_sources": {(e["source"], e["type"]) for e in events},
        "event_count": len(events),
    }


def take_gatherer(container):
    """The take-tickets' gatherer (the service has one per grouped command)."""
    return next(
        d.gatherer
        for d in container.dependencies
        if isinstance(d, GroupCommit) and d.attr_name == "ticket_group"
    )


def test_a_batched_run_gives_what_a_sequential_one_gives(
    container_factory, amqp_uri, pg_url_factory
):
    requests = plan()
    batched, batched_floor, ids = start_queue(
        container_factory, amqp_uri, pg_url_factory, "grouped", window_ms=20
    )
    with ClusterRpcProxy(batched.config) as cluster:
        pending = [
            cluster.queue.take_ticket.call_async({"service_id": ids[line], **body}, key)
            for line, body, key in requests
        ]
        grouped = [outcome(reply) for reply in pending]
    gatherer = take_gatherer(batched)
    assert gatherer.grouped > gatherer.groups, "some take-tickets shared a transaction"
    batched_events = issued_events(batched_floor)
    batched.stop()

    sequential, sequential_floor, ids = start_queue(
        container_factory, amqp_uri, pg_url_factory, "one_by_one", window_ms=0
    )
    with ClusterRpcProxy(sequential.config) as cluster:
        one_by_one = [
            outcome(cluster.queue.take_ticket.call_async({"service_id": ids[line], **body}, key))
            for line, body, key in requests
        ]
    gatherer = take_gatherer(sequential)
    assert not gatherer.enabled and gatherer.groups == 0

    expected = summary(one_by_one, sequential_floor)
    assert expected["numbers"] == {
        "A": [f"A-{n:03d}" for n in range(1, 13)],
        "B": [f"B-{n:03d}" for n in range(1, 9)],
        "C": [f"C-{n:03d}" for n in range(1, 10)],  # 8 and the keyed request's one ticket
    }
    assert expected["errors"] == {
        "QUOTA_EXHAUSTED": 8 + 6,
        "VALIDATION_FAILED": 2,
        "SERVICE_NOT_FOUND": 4,
    }
    assert summary(grouped, batched_floor) == expected
    twins = [o for o, (_, _, key) in zip(grouped, requests, strict=True) if key == TWIN_KEY]
    assert twins[0] == twins[1], "the keyed request issued one ticket"
    # each event carries its own caller's correlation id, not its group leader's
    correlations = [e["correlation_id"] for e in batched_events]
    assert len(set(correlations)) == len(correlations) == 29
