"""Call-next grouped in one transaction (issue 20, item 2; decision 0012), through the use cases
and the chassis's gatherer as the service wires them: the line's heads read once, each counter's
claim as alone, the streaks, calls and events with one statement each, one commit; and every
press the group cannot settle goes alone to meet exactly today's answer or error."""

from __future__ import annotations

import eventlet
import pytest
from sqlalchemy import event, select

from mpp_chassis.grouping import ALONE, Gatherer
from mpp_chassis.migrate import upgrade
from mpp_contracts.errors import Conflict, Forbidden, NotFound
from mpp_queue import usecases
from mpp_queue.adapters.tables import counters
from tests.queue.usecases.conftest import STAFF, Floor, setup_agency
from tests.queue.usecases.test_queue_tickets_flow import counter, take

pytestmark = pytest.mark.postgres


@pytest.fixture
def pg_floor(pg_url_factory):
    url = pg_url_factory("mpp_queue_calls")
    upgrade("queue", url)
    floor = Floor(url, usecases.Settings(nik_hash_key="group", max_priority_streak=2))
    yield floor
    floor.engine.dispose()


def press_at_once(floor: Floor, gatherer: Gatherer, presses: list[tuple]):
    """Each ``(counter id, actor, key)`` from its own greenthread, as the service's call_next
    entry point does: join a group; what the group cannot settle, do alone (a keyed press that
    lost to its twin answers the twin's ticket). Returns each press's ticket or error."""
    now = floor.now

    def press(counter_id, actor, key):
        uow = floor.uow()
        try:
            view = gatherer.submit(
                usecases.CallRequest(uow, counter_id, actor, key, now),
                lambda group: usecases.call_nexts(uow, floor.settings, group),
            )
            if view is ALONE:
                view = floor(
                    "call_next", counter_id, actor, settings=True, request_key=key, now=now
                )
            return view
        except Exception as exc:
            return exc
        finally:
            uow.session.close()

    threads = [eventlet.spawn(press, *p) for p in presses]
    return [t.wait() for t in threads]


def test_eight_counters_pressing_at_once_send_thirteen_statements_and_commit_once(pg_floor):
    """Alone: 8 × 5 statements (the counter, the heads, the claim returning the called ticket,
    the streak, the call with its event) and 8 commits. Grouped: the counters and the heads read
    once, a claim per counter (each returns its ticket: no read of them again), then one
    statement each for the streaks, the calls and the events, and one commit. The counters call
    in the line's order, as one after the other would."""
    agency, svc = setup_agency(pg_floor)
    desks = [counter(pg_floor, agency, [svc], name=str(n)) for n in range(8)]
    line = [
        take(pg_floor, svc, **({"priority": "elderly"} if n in (3, 4) else {})) for n in range(12)
    ]
    sent, commits = [], []
    event.listen(pg_floor.engine, "before_cursor_execute", lambda *a: sent.append(a[2]))
    event.listen(pg_floor.engine, "commit", lambda conn: commits.append(conn))
    gatherer = Gatherer(window_seconds=0.5, size=8)
    answers = press_at_once(pg_floor, gatherer, [(d["id"], STAFF, None) for d in desks])
    assert (gatherer.groups, gatherer.grouped) == (1, 8)
    # each counter's own rule: the elderly first, then the regular line in order
    order = [line[3], line[4], line[0], line[1], line[2], line[5], line[6], line[7]]
    assert [a["number"] for a in answers] == [t["number"] for t in order], answers
    assert [a["counter_id"] for a in answers] == [d["id"] for d in desks]
    assert {a["status"] for a in answers} == {"called"}
    assert len(commits) == 1
    assert len(sent) == 2 + 8 + 3 < 8 * 5, sent
    called = pg_floor.events("ticket_called")
    assert [e["payload"]["number"] for e in called] == [t["number"] for t in order]
    assert len({e["correlation_id"] for e in called}) == 8
    with pg_floor.engine.connect() as conn:
        streaks = dict(conn.execute(select(counters.c.name, counters.c.priority_streak)).all())
    assert streaks == {"0": 1, "1": 1, **{str(n): 0 for n in range(2, 8)}}


def test_a_group_calls_tickets_issued_while_it_gathered_at_their_issue(pg_floor):
    """The presses' time is their arrival; tickets issued after it, while the group gathered,
    are called at their own issue, never before."""
    agency, svc = setup_agency(pg_floor)
    desks = [counter(pg_floor, agency, [svc], name=str(n)) for n in range(2)]
    pressed = pg_floor.now
    line = [take(pg_floor, svc) for _ in range(2)]  # one and two seconds after the presses
    pg_floor.now = pressed
    gatherer = Gatherer(window_seconds=0.5, size=2)
    answers = press_at_once(pg_floor, gatherer, [(d["id"], STAFF, None) for d in desks])
    assert (gatherer.groups, gatherer.grouped) == (1, 2)
    assert [a["called_at"] for a in answers] == [t["issued_at"] for t in line]
    called = pg_floor.events("ticket_called")
    assert [e["payload"]["called_at"] for e in called] == [t["issued_at"] for t in line]


def test_a_call_alone_sends_five_statements_its_claim_returning_the_ticket(pg_floor):
    """The counter, the line's heads, the claim (returning the called ticket with its service's
    and counter's names), the streak, the call with its event: no read of the ticket again."""
    agency, svc = setup_agency(pg_floor)
    desk = counter(pg_floor, agency, [svc], name="Loket 7")
    first = take(pg_floor, svc)
    take(pg_floor, svc)
    sent = []
    event.listen(pg_floor.engine, "before_cursor_execute", lambda *a: sent.append(a[2]))
    view = pg_floor("call_next", desk["id"], STAFF, settings=True)
    assert len(sent) == 5, sent
    assert (view["number"], view["status"], view["call_count"]) == (first["number"], "called", 1)
    assert (view["counter_id"], view["counter_name"]) == (desk["id"], "Loket 7")
    assert view["service_name"] == svc["name"]
    called = pg_floor.events("ticket_called")
    assert [(e["payload"]["number"], e["payload"]["counter_name"]) for e in called] == [
        (first["number"], "Loket 7")
    ]


def test_what_a_call_group_cannot_settle_goes_alone_with_todays_answer(pg_floor):
    agency, svc = setup_agency(pg_floor)
    one, two, shut = (counter(pg_floor, agency, [svc], name=n) for n in ("1", "2", "3"))
    pg_floor("set_counter_open", shut["id"], False, STAFF, now=False)
    other, empty_line = setup_agency(pg_floor, "IMIGRASI", code="PASPOR", prefix="B")
    idle = counter(pg_floor, other, [empty_line], name="9")
    intruder = {"role": "officer", "agency_id": other["id"], "key_id": "intruder"}
    line = [take(pg_floor, svc) for _ in range(6)]
    done_key, twin_key = "d" * 64, "t" * 64
    replayed = pg_floor("call_next", one["id"], STAFF, settings=True, request_key=done_key)
    presses = [
        (one["id"], STAFF, None),
        (two["id"], STAFF, twin_key),
        (two["id"], STAFF, twin_key),  # the same press twice: answers the first's ticket
        (shut["id"], STAFF, None),
        (one["id"], intruder, None),  # another agency's counter
        ("no-such-counter", STAFF, None),
        (idle["id"], STAFF, None),  # its line is empty
        (one["id"], STAFF, done_key),  # a retried press: the ticket it called before
        (one["id"], STAFF, None),  # the counter's second press: alone, after the group
    ]
    gatherer = Gatherer(window_seconds=0.5, size=len(presses))
    answers = press_at_once(pg_floor, gatherer, presses)
    assert (gatherer.groups, gatherer.grouped) == (1, len(presses))
    assert replayed["number"] == line[0]["number"]
    assert answers[0]["number"] == line[1]["number"]
    assert answers[1]["number"] == line[2]["number"]
    assert answers[2]["id"] == answers[1]["id"], "the twin, alone after the commit, replayed"
    assert isinstance(answers[3], Conflict) and answers[3].code == "COUNTER_CLOSED"
    assert isinstance(answers[4], Forbidden)
    assert isinstance(answers[5], NotFound) and answers[5].code == "COUNTER_NOT_FOUND"
    assert isinstance(answers[6], NotFound) and answers[6].code == "NO_TICKET_WAITING"
    assert answers[7]["id"] == replayed["id"] and answers[7]["call_count"] == 1
    assert answers[8]["number"] == line[3]["number"]
    called = [e["payload"]["number"] for e in pg_floor.events("ticket_called")]
    assert called == [t["number"] for t in line[:4]], "each ticket called once, in line order"
