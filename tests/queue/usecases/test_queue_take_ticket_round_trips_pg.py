"""How many statements one take-ticket sends PostgreSQL (issue 20, item 4): each is a round trip
on the kiosk's path, so their number is a figure the code must keep."""

from __future__ import annotations

import pytest

from mpp_chassis.migrate import upgrade
from mpp_queue import usecases
from tests.queue.usecases.conftest import Floor, setup_agency
from tests.support.statements import statements_of

pytestmark = pytest.mark.postgres


@pytest.fixture
def pg_floor(pg_url_factory):
    url = pg_url_factory("mpp_queue_round_trips")
    upgrade("queue", url)
    floor = Floor(url, usecases.Settings(nik_hash_key="round-trips"))
    yield floor
    floor.engine.dispose()


@pytest.mark.parametrize("keyed", [False, True], ids=["kiosk", "keyed"])
def test_a_take_ticket_costs_six_statements(pg_floor, keyed):
    """Before: 8 statements (9 keyed): the key's lookup, the service, the place lock, the claim,
    the ticket, its event and the view's three reads. The key's lookup and the place lock now
    ride on the service's read, and the event on the ticket's insert (a data-modifying CTE)."""
    _, svc = setup_agency(pg_floor, daily_quota=50)
    pg_floor("take_ticket", {"service_id": svc["id"]}, settings=True)  # warm the caches
    key = "k" * 64 if keyed else None
    sent = statements_of(
        pg_floor.engine,
        lambda: pg_floor("take_ticket", {"service_id": svc["id"]}, settings=True, request_key=key),
    )
    assert len(sent) == 6, sent
    assert sent[0].startswith("SELECT services.") and "pg_advisory_xact_lock_shared" in sent[0]
    assert sent[2].startswith("WITH change AS (INSERT INTO tickets")
    assert len(pg_floor.events("ticket_issued")) == 2


def test_a_replayed_key_costs_its_lookup_and_its_view(pg_floor):
    _, svc = setup_agency(pg_floor)
    key = "r" * 64
    first = pg_floor("take_ticket", {"service_id": svc["id"]}, settings=True, request_key=key)
    replayed = []
    sent = statements_of(
        pg_floor.engine,
        lambda: replayed.append(
            pg_floor("take_ticket", {"service_id": svc["id"]}, settings=True, request_key=key)
        ),
    )
    assert replayed[0]["id"] == first["id"] and replayed[0]["number"] == "A-001"
    assert not any("service_day_counts" in s or "INSERT" in s for s in sent), sent
    assert len(pg_floor.events("ticket_issued")) == 1


@pytest.mark.parametrize("keyed", [False, True], ids=["press", "keyed"])
def test_a_call_next_stores_its_call_and_event_in_one_statement(pg_floor, keyed):
    """Before: 7 statements (8 keyed): the counter, (the press's key,) the line's heads, the
    claim, the streak, the ticket, the call and its event. The call now carries its event, and
    the claim returns the called ticket (no read of it again): 5 (6 keyed)."""
    from tests.queue.usecases.conftest import STAFF
    from tests.queue.usecases.test_queue_tickets_flow import counter

    agency, svc = setup_agency(pg_floor)
    desk = counter(pg_floor, agency, [svc])
    for _ in range(3):
        pg_floor.advance(seconds=1)
        pg_floor("take_ticket", {"service_id": svc["id"]}, settings=True)
    pg_floor("call_next", desk["id"], STAFF, settings=True)  # warm the caches
    key = "p" * 64 if keyed else None
    sent = statements_of(
        pg_floor.engine,
        lambda: pg_floor("call_next", desk["id"], STAFF, settings=True, request_key=key),
    )
    assert len(sent) == (6 if keyed else 5), sent
    assert any(s.startswith("WITH change AS (INSERT INTO calls") for s in sent)
    called = pg_floor.events("ticket_called")
    assert [e["payload"]["number"] for e in called] == ["A-001", "A-002"]
