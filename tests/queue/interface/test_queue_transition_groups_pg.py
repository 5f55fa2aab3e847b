"""Grouped ticket transitions and call-next through the real queue service on PostgreSQL (issue
20, item 2; decision 0012): many starts, then many completions, no-shows and cancellations sent
at once, and rounds of presses of many counters at once, some of them invalid (a ticket in the
wrong state, another agency's officer, one keyed press arriving twice, no such ticket or counter,
a closed counter, an empty line); then the same requests one at a time to a service with
grouping off, on a fresh database set up the same way. Both must leave the same tickets, the
same events (types and order per ticket, payloads) and give the same answers and errors."""

from __future__ import annotations

import json
from collections import Counter

import pytest
from nameko.standalone.rpc import ClusterRpcProxy
from sqlalchemy import select

from mpp_chassis.grouping import GroupCommit
from mpp_chassis.migrate import upgrade
from mpp_queue import usecases
from mpp_queue.adapters.tables import counters, tickets
from tests.queue.usecases.conftest import OUTBOX, Floor
from tests.support.mall import free_port

pytestmark = pytest.mark.postgres

CALLED, WAITING = 26, 3  # line A: the transitions' tickets
LINE_B, ELDERLY = 40, (4, 19)  # line B: waiting for the presses; two of them elderly
DESKS = 10  # counters D0..D9 of line B (D9 closed); D10 serves line C, which stays empty
START_KEY, COMPLETE_KEY = "s" * 64, "c" * 64
TRANSITIONS = {"ticket_serving", "ticket_completed", "ticket_no_show", "ticket_cancelled"}


def phases() -> list[list[tuple]]:
    """Two rounds of ``(ticket, action, data, actor, key)``: ``C<n>`` a called ticket, ``W<n>``
    a waiting one, ``?`` no ticket; the actor is the agency's officer or another agency's."""
    starts = [(f"C{n}", "start", {}, "officer", None) for n in range(16)]
    starts += [
        ("W0", "start", {}, "officer", None),  # waiting: not called yet
        ("C16", "start", {}, "intruder", None),
        ("C17", "start", {}, "officer", START_KEY),
        ("C17", "start", {}, "officer", START_KEY),  # the same press, retried at once
        ("C18", "complete", {}, "officer", None),  # called: not started
        ("C19", "no-show", {"reason": "not here"}, "officer", None),
        ("C20", "cancel", {"reason": "wrong line"}, "officer", None),
        ("?", "start", {}, "officer", None),
    ]
    completes = [(f"C{n}", "complete", {}, "officer", None) for n in range(14)]
    completes += [
        ("C14", "complete", {}, "intruder", None),
        ("C15", "complete", {}, "officer", COMPLETE_KEY),
        ("C15", "complete", {}, "officer", COMPLETE_KEY),
        ("C21", "complete", {}, "officer", None),  # called: not started
        ("C17", "complete", {}, "officer", None),
        ("W1", "cancel", {"reason": "gave up"}, "officer", None),
        ("C19", "start", {}, "officer", None),  # ended as a no-show
        ("C22", "start", {}, "officer", None),
    ]
    order = lambda round_: round_[0::2] + round_[1::2]  # noqa: E731 - interleave as counters do
    return [order(starts), order(completes)]


def start_queue(container_factory, amqp_uri, pg_url_factory, name: str, window_ms: float):
    url = pg_url_factory(f"mpp_queue_{name}")
    upgrade("queue", url)
    floor = Floor(url, usecases.Settings(nik_hash_key="group-key"))
    floor.now = usecases.now_utc()
    agency = floor("register_agency", {"code": "DUKCAPIL", "name": "Dukcapil"}, now=False)
    other = floor("register_agency", {"code": "IMIGRASI", "name": "Imigrasi"}, now=False)
    body = {"code": "KTP", "name": "KTP-el", "fee_idr": 0, "sla_minutes": 60, "prefix": "A"}
    service = floor("plug_service", agency["id"], body, now=False)
    desk = {"name": "1", "service_ids": [service["id"]]}
    desk = floor("add_counter", agency["id"], desk, now=False)
    ids = {"?": "00000000-0000-0000-0000-000000000000"}
    officer = {"role": "officer", "agency_id": agency["id"], "key_id": "officer-1"}
    for _ in range(CALLED + WAITING):
        floor.advance(milliseconds=1)  # distinct arrivals: the same line order in both runs
        floor("take_ticket", {"service_id": service["id"]}, settings=True)
    for n in range(CALLED):
        ids[f"C{n}"] = floor("call_next", desk["id"], officer, settings=True)["id"]
    with floor.engine.connect() as conn:
        waiting = conn.execute(
            select(tickets.c.id)
            .where(tickets.c.status == "waiting", tickets.c.service_id == service["id"])
            .order_by(tickets.c.number)
        ).scalars()
        ids |= {f"W{n}": ticket_id for n, ticket_id in enumerate(waiting)}
    line_b, line_c = (
        floor("plug_service", agency["id"], {**body, "code": code, "prefix": code}, now=False)
        for code in ("B", "C")
    )
    for n in range(LINE_B):
        floor.advance(milliseconds=1)
        priority = {"priority": "elderly"} if n in ELDERLY else {}
        floor("take_ticket", {"service_id": line_b["id"], **priority}, settings=True)
    for n in range(DESKS + 1):
        served = line_c if n == DESKS else line_b
        desk = {"name": f"D{n}", "service_ids": [served["id"]]}
        ids[f"D{n}"] = floor("add_counter", agency["id"], desk, now=False)["id"]
    floor("set_counter_open", ids[f"D{DESKS - 1}"], False, officer, now=False)
    actors = {
        "officer": officer,
        "intruder": {"role": "officer", "agency_id": other["id"], "key_id": "officer-2"},
    }
    config = {
        "AMQP_URI": amqp_uri,
        "DB_URL": url,
        "WEB_SERVER_ADDRESS": f"127.0.0.1:{free_port()}",
        "MALL_ID": "mpp-test",
        "NIK_HASH_KEY": "group-key",
        "NO_SHOW_AFTER_CALLS": 1,
        "OUTBOX_POLL_SECONDS": 60,
        "GROUP_COMMIT_MS": window_ms,
        "GROUP_COMMIT_SIZE": 16,
        "max_workers": 20,
    }
    from mpp_queue.service import QueueService

    container = container_factory(QueueService, config)
    container.start()
    return container, floor, ids, actors


def send(cluster, ids: dict, actors: dict, request: tuple):
    ticket, action, data, actor, key = request
    return cluster.queue.ticket_action.call_async(ids[ticket], action, data, actors[actor], key)


def outcome(request: tuple, reply) -> tuple:
    try:
        ticket = reply.result()
    except Exception as exc:  # the contracts' error types, registered by the chassis
        return (*request[:2], "error", getattr(exc, "code", type(exc).__name__))
    return (*request[:2], ticket["status"], ticket["number"], ticket["access_code"])


# ids (and their access codes' digests) and instants differ between the two databases; so does
# which counter (and so which counter name in a call's announcement) called which ticket when
# counters press at once
VOLATILE = ("_id", "_at", "_seconds", "_deadline", "_digest", "counter_name", "announcement")


def stored(floor: Floor) -> tuple[dict, dict, list]:
    """Each ticket's final row and its events (type and payload, ids and instants reduced to
    whether they are set), by ticket number; and the transition events' correlation ids."""
    with floor.engine.connect() as conn:
        rows = conn.execute(select(tickets)).mappings().all()
        bodies = conn.execute(select(OUTBOX.c.body).order_by(OUTBOX.c.seq)).scalars().all()

    def reduced(values: dict) -> dict:
        kept = {"officer_id", "end_reason", "status", "reason", "number", "service_code"}
        return {
            k: v if k in kept or not k.endswith(VOLATILE) else v is not None
            for k, v in values.items()
            if k not in ("id", "journey_id", "request_key")
        }

    final = {r["number"]: reduced(dict(r)) for r in rows}
    events: dict = {}
    correlations = []
    for envelope in map(json.loads, bodies):
        payload = envelope["payload"]
        if "number" in payload:
            events.setdefault(payload["number"], []).append((envelope["type"], reduced(payload)))
        if envelope["type"] in TRANSITIONS:
            correlations.append(envelope["correlation_id"])
    return final, events, correlations


def test_grouped_transitions_give_what_one_at_a_time_gives(
    container_factory, amqp_uri, pg_url_factory
):
    rounds = phases()
    batched, batched_floor, ids, actors = start_queue(
        container_factory, amqp_uri, pg_url_factory, "transitions_grouped", window_ms=20
    )
    grouped = []
    with ClusterRpcProxy(batched.config) as cluster:
        for round_ in rounds:
            pending = [send(cluster, ids, actors, request) for request in round_]
            grouped += [outcome(r, reply) for r, reply in zip(round_, pending, strict=True)]
    gatherer = next(
        d.gatherer
        for d in batched.dependencies
        if getattr(d, "attr_name", "") == "transition_group"
    )
    assert gatherer.grouped > gatherer.groups, "some transitions shared a transaction"
    batched.stop()

    sequential, sequential_floor, ids, actors = start_queue(
        container_factory, amqp_uri, pg_url_factory, "transitions_one_by_one", window_ms=0
    )
    one_by_one = []
    with ClusterRpcProxy(sequential.config) as cluster:
        for round_ in rounds:
            one_by_one += [outcome(r, send(cluster, ids, actors, r)) for r in round_]
    assert not any(d.gatherer.groups for d in sequential.dependencies if isinstance(d, GroupCommit))

    # the same answers to the same requests; only which of a keyed twin came first may differ
    assert Counter(grouped) == Counter(one_by_one)
    requests = [r for round_ in rounds for r in round_]
    unkeyed = [i for i, r in enumerate(requests) if r[4] is None]
    assert [grouped[i] for i in unkeyed] == [one_by_one[i] for i in unkeyed]
    assert len(one_by_one) == 24 + 22
    expected = Counter(o[2] if o[2] != "error" else o[3] for o in one_by_one)
    assert expected == {
        "serving": 16 + 1 + 1,
        "done": 14 + 1 + 1,
        "no_show": 1,
        "cancelled": 2,
        "INVALID_TRANSITION": 3 + 3,
        "FORBIDDEN": 2,
        "TICKET_NOT_FOUND": 1,
    }, expected

    final, events, correlations = stored(batched_floor)
    expected_final, expected_events, _ = stored(sequential_floor)
    assert final == expected_final
    assert events == expected_events
    assert len(correlations) == len(set(correlations)) == 18 + 16 + 1 + 2, "each caller's own"


def presses() -> list[list[tuple]]:
    """Four rounds of ``(counter, actor, key)``: nine counters of line B each press once (D8
    twice with one key: the same press, retried), and a closed counter, another agency's
    officer, no such counter and a counter of an empty line press too."""
    rounds = []
    for r in range(4):
        round_ = [(f"D{n}", "officer", None) for n in range(8)]
        round_ += [("D8", "officer", str(r) * 64), ("D8", "officer", str(r) * 64)]
        round_ += [("D9", "officer", None), ("D0", "intruder", None), ("?", "officer", None)]
        round_ += [(f"D{DESKS}", "officer", None)]
        rounds.append(round_[0::2] + round_[1::2])
    return rounds


def press(cluster, ids: dict, actors: dict, request: tuple):
    desk, actor, key = request
    return cluster.queue.call_next.call_async(ids[desk], actors[actor], key)


def called(reply) -> tuple:
    """Which counter called which ticket depends on who pressed first; what is called may not."""
    try:
        ticket = reply.result()
    except Exception as exc:
        return ("error", getattr(exc, "code", type(exc).__name__))
    return (ticket["status"], ticket["number"], ticket["call_count"], ticket["access_code"])


def summary(round_: list[tuple], outcomes: list[tuple]) -> dict:
    """A round's answers: which tickets were called, which press met which error, and whether
    D8's keyed press and its retry answered one and the same call."""
    twins = [o for r, o in zip(round_, outcomes, strict=True) if r[2] is not None]
    return {
        "called": sorted({o[1] for o in outcomes if o[0] != "error"}),
        "answers": sum(o[0] != "error" for o in outcomes),
        "errors": {(r[0], o[1]) for r, o in zip(round_, outcomes, strict=True) if o[0] == "error"},
        "twins": len(twins) == 2 and twins[0] == twins[1],
    }


def test_grouped_presses_call_what_one_at_a_time_calls(container_factory, amqp_uri, pg_url_factory):
    rounds = presses()
    batched, batched_floor, ids, actors = start_queue(
        container_factory, amqp_uri, pg_url_factory, "calls_grouped", window_ms=20
    )
    grouped = []
    with ClusterRpcProxy(batched.config) as cluster:
        for round_ in rounds:
            pending = [press(cluster, ids, actors, request) for request in round_]
            grouped.append(summary(round_, [called(reply) for reply in pending]))
    groups = {d.attr_name: d.gatherer for d in batched.dependencies if isinstance(d, GroupCommit)}
    assert groups["call_group"].grouped > groups["call_group"].groups, "presses were grouped"
    batched.stop()

    sequential, sequential_floor, ids, actors = start_queue(
        container_factory, amqp_uri, pg_url_factory, "calls_one_by_one", window_ms=0
    )
    one_by_one = []
    with ClusterRpcProxy(sequential.config) as cluster:
        for round_ in rounds:
            one_by_one.append(
                summary(round_, [called(press(cluster, ids, actors, r)) for r in round_])
            )

    assert grouped == one_by_one
    # the first round: the two elderly first, then the regular line
    assert one_by_one[0]["called"] == [f"B-{n:03d}" for n in range(1, 9)] + ["B-020"]
    assert one_by_one[3]["called"] == [f"B-{n:03d}" for n in range(28, 37)]
    assert all(r["twins"] and r["answers"] == 10 for r in one_by_one)
    assert one_by_one[0]["errors"] == {
        ("D9", "COUNTER_CLOSED"),
        ("D0", "FORBIDDEN"),
        ("?", "COUNTER_NOT_FOUND"),
        (f"D{DESKS}", "NO_TICKET_WAITING"),
    }
    final, events, _ = stored(batched_floor)
    assert (final, events) == stored(sequential_floor)[:2]
    with batched_floor.engine.connect() as conn:
        bodies = conn.execute(select(OUTBOX.c.body)).scalars().all()
        streaks = sorted(conn.execute(select(counters.c.priority_streak)).scalars())
    with sequential_floor.engine.connect() as conn:
        assert streaks == sorted(conn.execute(select(counters.c.priority_streak)).scalars())
    calls = [json.loads(b) for b in bodies]
    correlations = [e["correlation_id"] for e in calls if e["type"] == "ticket_called"]
    assert len(correlations) == CALLED + 4 * 9
    assert len(set(correlations[CALLED:])) == 4 * 9, "each press's own correlation id"
