"""Ticket transitions grouped in one transaction (issue 20, item 2; decision 0012), through the
use cases and the chassis's gatherer as the service wires them: one guarded multi-row update and
one multi-row insert of events for the group, and every request the group cannot settle goes
alone to meet exactly the answer or the error it meets without grouping."""

from __future__ import annotations

import hashlib
import json

import eventlet
import pytest
from sqlalchemy import select

from mpp_chassis.grouping import ALONE, Gatherer
from mpp_chassis.migrate import upgrade
from mpp_contracts.errors import Conflict, Forbidden, NotFound
from mpp_queue import usecases
from tests.queue.usecases.conftest import OUTBOX, STAFF, Floor, setup_agency
from tests.queue.usecases.test_queue_completion_routing import code_of, terms
from tests.queue.usecases.test_queue_tickets_flow import counter, take
from tests.support.statements import recording

pytestmark = pytest.mark.postgres


@pytest.fixture
def pg_floor(pg_url_factory):
    url = pg_url_factory("mpp_queue_transitions")
    upgrade("queue", url)
    floor = Floor(url, usecases.Settings(nik_hash_key="group", no_show_after_calls=1))
    yield floor
    floor.engine.dispose()


def called_tickets(floor: Floor, n: int, **service) -> tuple[dict, list[dict]]:
    """An agency with ``n`` tickets called at its counter, in number order."""
    agency, svc = setup_agency(floor, **service)
    desk = counter(floor, agency, [svc])
    tickets = [take(floor, svc) for _ in range(n)]
    for _ in tickets:
        floor("call_next", desk["id"], STAFF, settings=True)
    return agency, tickets


def act_at_once(floor: Floor, gatherer: Gatherer, requests: list[tuple]):
    """Each ``(ticket id, action, data, actor, key)`` from its own greenthread, as the service's
    ticket_action entry point does: join a group; what the group cannot settle, do alone.
    Returns each caller's ticket or error."""
    now = floor.now

    def caller(ticket_id, action, data, actor, key):
        uow = floor.uow()
        try:
            view = gatherer.submit(
                usecases.TransitionRequest(uow, ticket_id, action, data, actor, key, now),
                lambda group: usecases.ticket_transitions(uow, floor.settings, group),
            )
            if view is ALONE:
                args = (ticket_id, action, data, actor)
                view = floor("ticket_action", *args, settings=True, request_key=key, now=now)
            return view
        except Exception as exc:
            return exc
        finally:
            uow.session.close()

    threads = [eventlet.spawn(caller, *request) for request in requests]
    return [t.wait() for t in threads]


def test_a_group_of_transitions_sends_three_statements_and_commits_once(pg_floor):
    """Eight starts alone: 8 × 3 statements (the ticket, its guarded update, its event) and 8
    commits. Grouped: the tickets read with one statement, updated with one and their events
    inserted with one, and one commit; the same for eight completions."""
    _, tickets = called_tickets(pg_floor, 8)
    for action, status in (("start", "serving"), ("complete", "done")):
        with recording(pg_floor.engine) as sent:
            pg_floor.advance(minutes=2)
            gatherer = Gatherer(window_seconds=0.5, size=8)
            answers = act_at_once(
                pg_floor, gatherer, [(t["id"], action, {}, STAFF, None) for t in tickets]
            )
        assert [a["status"] for a in answers] == [status] * 8, answers
        assert [a["id"] for a in answers] == [t["id"] for t in tickets]
        assert (gatherer.groups, gatherer.grouped) == (1, 8)
        assert sent.commits == 1
        # a completion's routing (its service's payment terms) is read with its ticket
        assert len(sent.statements) == 3 < 8 * 3, sent.statements
        assert sum(s.startswith("UPDATE tickets") for s in sent.statements) == 1
        assert sum(s.startswith("INSERT INTO outbox") for s in sent.statements) == 1
    completed = pg_floor.events("ticket_completed")
    assert sorted(e["payload"]["number"] for e in completed) == [t["number"] for t in tickets]
    assert {e["payload"]["serving_seconds"] for e in completed} == {120}
    assert len({e["correlation_id"] for e in completed}) == 8, "each caller's own correlation id"


def test_what_a_group_cannot_settle_goes_alone_with_todays_answer(pg_floor):
    _, (started, waiting_one, twin, both, gone, ended) = called_tickets(pg_floor, 6)
    pg_floor("ticket_action", started["id"], "start", {}, STAFF, settings=True)
    other, _ = setup_agency(pg_floor, "IMIGRASI", code="PASPOR", prefix="B")
    intruder = {"role": "officer", "agency_id": other["id"], "key_id": "intruder"}
    _, svc = setup_agency(pg_floor, "BPJS", code="BPJS", prefix="C")
    waiting = take(pg_floor, svc)
    key = "k" * 64
    requests = [
        (started["id"], "complete", {}, STAFF, None),
        (waiting["id"], "start", {}, STAFF, None),  # not called: the domain refuses
        (waiting_one["id"], "start", {}, intruder, None),  # another agency's ticket
        ("no-such-ticket", "complete", {}, STAFF, None),
        (twin["id"], "start", {}, STAFF, key),
        (twin["id"], "start", {}, STAFF, key),  # the same press twice: alone, after the commit
        (both["id"], "start", {}, STAFF, None),
        (both["id"], "cancel", {"reason": "left"}, STAFF, None),  # alone, after the start
        (gone["id"], "no-show", {"reason": "absent"}, STAFF, None),
        (ended["id"], "cancel", {"reason": "wrong line"}, STAFF, None),
    ]
    gatherer = Gatherer(window_seconds=0.5, size=len(requests))
    answers = act_at_once(pg_floor, gatherer, requests)
    assert (gatherer.groups, gatherer.grouped) == (1, len(requests))
    assert answers[0]["status"] == "done"
    assert isinstance(answers[1], Conflict) and answers[1].code == "INVALID_TRANSITION"
    assert isinstance(answers[2], Forbidden)
    assert isinstance(answers[3], NotFound) and answers[3].code == "TICKET_NOT_FOUND"
    assert answers[4]["status"] == "serving"
    assert isinstance(answers[5], Conflict) and answers[5].code == "INVALID_TRANSITION"
    assert answers[6]["status"] == "serving"
    assert isinstance(answers[7], Conflict), "a serving ticket cannot be cancelled"
    assert answers[8]["status"] == "no_show" and answers[9]["status"] == "cancelled"
    stored = {
        t["id"]: pg_floor("get_ticket", t["id"], settings=True, actor=STAFF)
        for t in (waiting, waiting_one, gone, ended)
    }
    assert stored[waiting["id"]]["status"] == "waiting"
    assert stored[waiting_one["id"]]["status"] == "called"
    events = pg_floor.events()
    assert [(e["type"], e["payload"]["ticket_id"]) for e in events[-5:]] == [
        ("ticket_completed", started["id"]),
        ("ticket_serving", twin["id"]),
        ("ticket_serving", both["id"]),
        ("ticket_no_show", gone["id"]),
        ("ticket_cancelled", ended["id"]),
    ], "one event per transition stored, in the group's order"
    reasons = {e["type"]: e["payload"]["reason"] for e in events if "reason" in e["payload"]}
    assert reasons == {"ticket_no_show": "absent", "ticket_cancelled": "wrong line"}


def test_a_late_group_flags_each_breach_after_its_own_completion(pg_floor):
    _, tickets = called_tickets(pg_floor, 3, sla_minutes=10)
    for t in tickets:
        pg_floor("ticket_action", t["id"], "start", {}, STAFF, settings=True)
    pg_floor.advance(minutes=11)
    gatherer = Gatherer(window_seconds=0.5, size=3)
    answers = act_at_once(
        pg_floor, gatherer, [(t["id"], "complete", {}, STAFF, None) for t in tickets]
    )
    assert [a["status"] for a in answers] == ["done"] * 3
    for t in tickets:
        assert pg_floor("get_ticket", t["id"], settings=True, actor=STAFF)["sla"]["breached"]
    ends = [e for e in pg_floor.events() if e["type"] in ("ticket_completed", "sla_breached")]
    for t in tickets:
        mine = [e for e in ends if e["payload"]["ticket_id"] == t["id"]]
        assert [e["type"] for e in mine] == ["ticket_completed", "sla_breached"]
        assert mine[0]["correlation_id"] == mine[1]["correlation_id"]
    assert pg_floor("sweep_sla", settings=True) == 0


def test_grouped_completions_are_routed_by_payment_s_terms_as_alone(pg_floor):
    """A group's completions carry the same routing as a completion alone (issue 20, item 3):
    a free service whose payment terms are current goes out as ``ticket_completed.free``."""
    agency, tickets = called_tickets(pg_floor, 3, fee_idr=0)
    service = {"id": tickets[0]["service_id"], "agency_id": agency["id"]}
    terms(pg_floor, service, 1, required=False)
    gatherer = Gatherer(window_seconds=0.5, size=3)
    act_at_once(pg_floor, gatherer, [(t["id"], "start", {}, STAFF, None) for t in tickets])
    act_at_once(pg_floor, gatherer, [(t["id"], "complete", {}, STAFF, None) for t in tickets])
    assert (gatherer.groups, gatherer.grouped) == (2, 6)
    with pg_floor.engine.connect() as conn:
        rows = conn.execute(
            select(OUTBOX.c.routing_key, OUTBOX.c.body).where(
                OUTBOX.c.event_type == "ticket_completed"
            )
        ).all()
    assert [key for key, _ in rows] == ["ticket_completed.free"] * 3
    payloads = [json.loads(body)["payload"] for _, body in rows]
    assert {(p["payment_required"], p["payment_terms_version"]) for p in payloads} == {(False, 1)}
    codes = {t["id"]: code_of(pg_floor, t) for t in tickets}  # each with its own code's digest
    for p in payloads:
        assert p["access_digest"] == hashlib.sha256(codes[p["ticket_id"]].encode()).hexdigest()
