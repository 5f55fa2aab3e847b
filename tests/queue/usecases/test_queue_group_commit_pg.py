"""Take-tickets grouped in one transaction (issue 20, item 2), through the use cases and the
chassis's gatherer as the service wires them: one caller's invalid request fails alone, and a
group that cannot be stored gives its places back and sends every caller alone."""

from __future__ import annotations

from datetime import timedelta

import eventlet
import pytest
from sqlalchemy import event, text
from sqlalchemy.exc import IntegrityError

from mpp_chassis.db import UnitOfWork
from mpp_chassis.grouping import ALONE, Gatherer
from mpp_chassis.migrate import upgrade
from mpp_contracts.errors import Conflict, NotFound, ValidationFailed
from mpp_queue import usecases
from tests.queue.usecases.conftest import STAFF, Floor, setup_agency
from tests.queue.usecases.test_queue_tickets_flow import issued_today

pytestmark = pytest.mark.postgres


@pytest.fixture
def pg_floor(pg_url_factory):
    url = pg_url_factory("mpp_queue_group")
    upgrade("queue", url)
    floor = Floor(url, usecases.Settings(nik_hash_key="group"))
    yield floor
    floor.engine.dispose()


def take_at_once(floor: Floor, gatherer: Gatherer, requests: list[tuple[dict, str | None]]):
    """Each request from its own greenthread, as the service's take_ticket entry point does:
    join a group; what the group cannot settle, take alone (a keyed conflict answered with the
    first arrival's ticket). Returns each caller's ticket or error."""

    def caller(i: int, data: dict, key: str | None):
        uow = floor.uow()
        now = floor.now + timedelta(milliseconds=i)
        try:
            view = gatherer.submit(
                usecases.TakeRequest(uow, data, key, now),
                lambda group: usecases.take_tickets(uow, floor.settings, group),
            )
            if view is ALONE:
                try:
                    view = floor("take_ticket", data, settings=True, request_key=key, now=now)
                except (IntegrityError, Conflict):
                    view = key and floor("ticket_for_request", key, settings=True)
                    if not view:
                        raise
            return view
        except Exception as exc:
            return exc
        finally:
            uow.session.close()

    threads = [eventlet.spawn(caller, i, *request) for i, request in enumerate(requests)]
    return [t.wait() for t in threads]


def test_an_invalid_request_in_a_group_fails_alone(pg_floor):
    agency, open_line = setup_agency(pg_floor)
    _, full_line = setup_agency(pg_floor, "IMIGRASI", code="PASPOR", prefix="B", daily_quota=1)
    pg_floor("take_ticket", {"service_id": full_line["id"]}, settings=True)
    twin = "t" * 64
    gatherer = Gatherer(window_seconds=0.5, size=7)  # the seven below fill exactly one group
    answers = take_at_once(
        pg_floor,
        gatherer,
        [
            ({"service_id": open_line["id"]}, None),
            ({"service_id": "no-such-service"}, None),
            ({"service_id": open_line["id"], "priority": "elderly"}, None),
            ({"service_id": full_line["id"]}, None),
            ({"service_id": open_line["id"], "nik": "3171014506900"}, None),
            ({"service_id": open_line["id"]}, twin),
            ({"service_id": open_line["id"]}, twin),
        ],
    )
    assert (gatherer.groups, gatherer.grouped) == (1, 7)
    assert [answers[i]["number"] for i in (0, 2, 5)] == ["A-001", "A-002", "A-003"]
    assert isinstance(answers[1], NotFound) and answers[1].code == "SERVICE_NOT_FOUND"
    assert isinstance(answers[3], Conflict) and answers[3].code == "QUOTA_EXHAUSTED"
    assert isinstance(answers[4], ValidationFailed)
    assert answers[6]["id"] == answers[5]["id"], "the twin, alone after the commit, replayed"
    assert answers[2]["position"] == 1 and answers[0]["position"] == 2  # elderly first
    issued = pg_floor.events("ticket_issued")
    assert sorted(e["payload"]["number"] for e in issued) == ["A-001", "A-002", "A-003", "B-001"]
    assert issued_today(pg_floor, open_line) == 3 and issued_today(pg_floor, full_line) == 1


def test_a_group_that_cannot_be_stored_gives_its_places_back(pg_floor, monkeypatch):
    _, line = setup_agency(pg_floor, daily_quota=4)
    failures = []

    def broken_store(self, rows):
        failures.append(len(rows))
        raise RuntimeError("the database went away mid-group")

    gatherer = Gatherer(window_seconds=0.5, size=3)
    with monkeypatch.context() as patch:
        patch.setattr(UnitOfWork, "store_events", broken_store)
        answers = take_at_once(pg_floor, gatherer, [({"service_id": line["id"]}, None)] * 3)
    assert failures == [3], "the group failed once; its callers then went alone"
    numbers = sorted(a["number"] for a in answers)
    assert numbers == ["A-004", "A-005", "A-006"]  # A-001..003 were drawn by the failed group
    assert issued_today(pg_floor, line) == 3, "the group's places went back to the quota"
    assert len(pg_floor.events("ticket_issued")) == 3
    pg_floor("take_ticket", {"service_id": line["id"]}, settings=True)
    with pytest.raises(Conflict):
        pg_floor("take_ticket", {"service_id": line["id"]}, settings=True)


def statements_of_a_group(floor: Floor, requests: list[tuple[dict, str | None]]):
    """What one group of ``requests`` sends PostgreSQL: its answers, statements and commits."""
    sent, commits = [], []

    def count(*args):
        sent.append(args[2])

    def committed(conn):
        commits.append(conn)

    event.listen(floor.engine, "before_cursor_execute", count)
    event.listen(floor.engine, "commit", committed)
    try:
        gatherer = Gatherer(window_seconds=0.5, size=len(requests))
        answers = take_at_once(floor, gatherer, requests)
    finally:
        event.remove(floor.engine, "before_cursor_execute", count)
        event.remove(floor.engine, "commit", committed)
    assert (gatherer.groups, gatherer.grouped) == (1, len(requests))
    return answers, sent, commits


# a group's statements: the services (with the place locks), then per line its claim (committed
# apart) and one read of its waiting tickets, open counters and serving times; the tickets' and
# the events' inserts; whatever the group's size
GROUP_STATEMENTS = 1 + 2 + 2


def test_a_group_sends_a_constant_number_of_statements_and_commits_once(pg_floor):
    """Eight take-tickets alone: 8 × 6 statements and 8 commits. Grouped, set-based: the service
    read once, the line's eight places claimed in one statement, one multi-row insert for the
    tickets and one for their events, the line read once for all eight positions, one commit
    (the group of one-by-one claims and counts before sent 28)."""
    _, line = setup_agency(pg_floor)
    pg_floor("take_ticket", {"service_id": line["id"]}, settings=True)  # warm the caches
    pg_floor.advance(seconds=1)
    answers, sent, commits = statements_of_a_group(
        pg_floor, [({"service_id": line["id"]}, None)] * 8
    )
    assert sorted(a["number"] for a in answers) == [f"A-{n:03d}" for n in range(2, 10)]
    assert sorted(a["position"] for a in answers) == list(range(2, 10))
    assert len(commits) == 1
    assert len(sent) == GROUP_STATEMENTS, sent
    assert sum(s.startswith("INSERT INTO tickets") for s in sent) == 1
    assert sum(s.startswith("INSERT INTO outbox") for s in sent) == 1
    # the line's read, planned once per connection (mpp_chassis.prepared): sent as EXECUTE
    assert not any("SELECT line.*" in s for s in sent), sent
    assert any(s.startswith("EXECUTE mpp_") and "%(first_queued)s" in s for s in sent), sent
    answers, sent, _ = statements_of_a_group(pg_floor, [({"service_id": line["id"]}, None)] * 3)
    assert len(sent) == GROUP_STATEMENTS, "three cost what eight cost"


def test_a_quota_that_fits_part_of_a_group_refuses_the_rest_alone(pg_floor):
    _, line = setup_agency(pg_floor, daily_quota=5)
    pg_floor("take_ticket", {"service_id": line["id"]}, settings=True)
    answers, sent, _ = statements_of_a_group(pg_floor, [({"service_id": line["id"]}, None)] * 8)
    tickets = [a for a in answers if isinstance(a, dict)]
    refused = [a for a in answers if not isinstance(a, dict)]
    assert [a["number"] for a in answers[:4]] == ["A-002", "A-003", "A-004", "A-005"]
    assert len(tickets) == 4, "the first four arrivals took the four places left"
    assert all(isinstance(a, Conflict) and a.code == "QUOTA_EXHAUSTED" for a in refused)
    assert refused[0].details == {"daily_quota": 5}
    assert len(sent) == GROUP_STATEMENTS + 1, "what overshot the quota went back at once"
    assert issued_today(pg_floor, line) == 5
    with pg_floor.engine.connect() as conn:
        assert conn.execute(text("SELECT issued FROM service_day_counts")).scalar_one() == 5
    assert len(pg_floor.events("ticket_issued")) == 5
    with pytest.raises(Conflict):
        pg_floor("take_ticket", {"service_id": line["id"]}, settings=True)
    answers, _, _ = statements_of_a_group(pg_floor, [({"service_id": line["id"]}, None)] * 2)
    assert [a.code for a in answers] == ["QUOTA_EXHAUSTED"] * 2


def test_grouped_positions_are_what_each_ticket_reads_alone(pg_floor):
    """Positions and waits computed once per line for the group are those each ticket's own
    view reads: with priority and regular tickets waiting, an open counter mid-way through a
    priority streak, a serving time on record and two lines in the group."""
    agency, line = setup_agency(pg_floor)
    _, other = setup_agency(pg_floor, "IMIGRASI", code="PASPOR", prefix="B")
    for service in (line, other):
        pg_floor(
            "add_counter",
            service["agency_id"],
            {"name": "1", "service_ids": [service["id"]]},
            now=False,
        )
    for priority in (None, "elderly", None, "elderly", None):
        pg_floor.advance(seconds=1)
        body = {"service_id": line["id"]} | ({"priority": priority} if priority else {})
        pg_floor("take_ticket", body, settings=True)
    counter = pg_floor("list_counters", agency["id"], now=False)["items"][0]
    pg_floor.advance(seconds=1)
    served = pg_floor("call_next", counter["id"], STAFF, settings=True)
    for action in ("start", "complete"):  # a serving time on record
        pg_floor.advance(minutes=4)
        pg_floor("ticket_action", served["id"], action, None, STAFF, settings=True)
    called = pg_floor("call_next", counter["id"], STAFF, settings=True)
    assert called["priority"] == "elderly", "the counter is mid-way through a priority streak"
    pg_floor.advance(seconds=1)
    requests = []
    for i in range(9):
        service = other if i % 4 == 3 else line
        body = {"service_id": service["id"]} | ({"priority": "disabled"} if i % 3 == 0 else {})
        requests.append((body, None))
    answers, _, _ = statements_of_a_group(pg_floor, requests)
    assert all(isinstance(a, dict) for a in answers), answers
    for i, answer in enumerate(answers):
        uow = pg_floor.uow()
        try:
            alone = usecases.ticket_view(
                uow.session,
                pg_floor.settings,
                usecases.tickets.load_ticket(uow.session, answer["id"]),
                pg_floor.now + timedelta(milliseconds=i),
            )
        finally:
            uow.session.close()
        shown = {k: answer[k] for k in ("position", "ahead", "estimated_wait_minutes")}
        assert shown == {k: alone[k] for k in shown}, (i, answer["number"])
