"""Two real processes on one PostgreSQL database, started to hit it at the same instant: kiosks
in both never hand out the same number, and six counters (three in each process) calling at
once never get the same ticket, and every ticket is called exactly once."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from mpp_chassis.migrate import upgrade
from mpp_contracts.errors import Conflict
from mpp_queue import usecases
from tests.queue.usecases.conftest import STAFF, Floor, setup_agency

pytestmark = pytest.mark.postgres

WORKER = Path(__file__).with_name("queue_race_worker.py")
ROOT = Path(__file__).resolve().parents[3]


def race(url: str, *argument_lists: list[str]) -> list[list]:
    start_at = str(time.time() + 3)  # both processes import, connect, then wait for this
    processes = [
        subprocess.Popen(
            [sys.executable, str(WORKER), url, args[0], start_at, *args[1:]],
            cwd=ROOT,
            env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for args in argument_lists
    ]
    outputs = []
    for process in processes:
        out, err = process.communicate(timeout=120)
        assert process.returncode == 0, err[-2000:]
        outputs.append(json.loads(out.strip().splitlines()[-1]))
    return outputs


def floor_with_counters(pg_url_factory, name: str, count: int):
    """A migrated PostgreSQL queue database with one agency, one service and ``count`` counters
    serving it; returns the floor, the service and the counters."""
    url = pg_url_factory(f"mpp_queue_{name}")
    upgrade("queue", url)
    floor = Floor(url, usecases.Settings(nik_hash_key=name))
    agency, svc = setup_agency(floor)
    counters = [
        floor("add_counter", agency["id"], {"name": str(i), "service_ids": [svc["id"]]}, now=False)
        for i in range(1, count + 1)
    ]
    return floor, svc, counters


def test_two_processes_issue_unique_numbers_and_never_call_the_same_ticket(pg_url_factory):
    url = pg_url_factory("mpp_queue_race")
    upgrade("queue", url)
    floor = Floor(url, usecases.Settings(nik_hash_key="race"))
    floor.now = None  # the workers use the real clock
    agency, svc = setup_agency(floor)
    counters = [
        floor("add_counter", agency["id"], {"name": str(i), "service_ids": [svc["id"]]}, now=False)
        for i in range(1, 7)
    ]
    floor.engine.dispose()

    issued = race(url, ["issue", svc["id"], "40"], ["issue", svc["id"], "40"])
    numbers = issued[0] + issued[1]
    assert len(numbers) == 80 and all(issued), "both processes issued tickets"
    assert len(set(numbers)) == 80, Counter(numbers).most_common(3)
    assert sorted(numbers) == [f"A-{n:03d}" for n in range(1, 81)]

    ids = [c["id"] for c in counters]
    calls = race(url, ["call", *ids[:3]], ["call", *ids[3:]])
    called = [ticket for _, ticket in calls[0] + calls[1]]
    assert calls[0] and calls[1], "both processes called tickets"
    duplicates = [t for t, n in Counter(called).items() if n > 1]
    assert not duplicates, f"tickets called twice: {duplicates}"
    assert len(called) == 80
    assert len({counter for counter, _ in calls[0] + calls[1]}) == 6


def test_a_counter_passes_over_a_head_another_counter_is_claiming(pg_url_factory):
    """Counter 1's call-next holds the head of the line (not yet committed). Counter 2 does not
    wait for it: it takes the next ticket at once (a lock wait would fail this test through
    ``lock_timeout``); then both commit and each ticket was called once."""
    from sqlalchemy import text

    floor, svc, counters = floor_with_counters(pg_url_factory, "skip", 2)
    for _ in range(3):
        floor.advance(seconds=1)
        floor("take_ticket", {"service_id": svc["id"]}, settings=True)
    first, second = floor.uow(), floor.uow()
    try:
        held = usecases.call_next(first, floor.settings, counters[0]["id"], STAFF, now=floor.now)
        second.session.execute(text("SET lock_timeout = '2s'"))
        passed = usecases.call_next(second, floor.settings, counters[1]["id"], STAFF, now=floor.now)
        assert (held["number"], passed["number"]) == ("A-001", "A-002")
        second.commit()
        first.commit()
    finally:
        first.session.close()
        second.session.close()
    called = [e["payload"]["number"] for e in floor.events("ticket_called")]
    assert sorted(called) == ["A-001", "A-002"]
    floor.engine.dispose()


def test_call_next_claims_by_key_when_statistics_still_say_the_line_is_empty(pg_url_factory):
    """A new mall's first morning: the tickets table was analysed while empty, then the line
    grew. The claim must still look its ten choices up by primary key, not scan every waiting
    ticket (the plan it got before: ~1 ms per call at 2,500 waiting, while others skip past)."""
    from sqlalchemy import bindparam, text

    from mpp_queue.usecases.counter_calls import _CLAIM_FIRST_FREE_PG

    url = pg_url_factory("mpp_queue_plan")
    upgrade("queue", url)
    floor = Floor(url, usecases.Settings(nik_hash_key="plan"))
    agency, svc = setup_agency(floor)
    floor("take_ticket", {"service_id": svc["id"]}, settings=True)
    with floor.engine.begin() as conn:
        conn.execute(text("ANALYZE tickets"))
        conn.execute(  # 2,000 more waiting tickets, copied from the first
            text(
                "INSERT INTO tickets SELECT md5(g::text), journey_id, 'X-' || g, day, agency_id,"
                " service_id, status, priority, nik_hash, nik_last4, phone, issued_at,"
                " queued_at + g * interval '1 second', call_count, called_at, last_called_at,"
                " started_at, completed_at, ended_at, counter_id, officer_id, fee_idr,"
                " payment_id, payment_status, rating_token, rating_expires_at, booking_id,"
                " booked_slot_start, transferred_from, transferred_to, sla_minutes,"
                " sla_deadline, sla_breached_at, end_reason"
                " FROM tickets, generate_series(1, 2000) AS g"
            )
        )
        ids = conn.execute(text("SELECT id FROM tickets ORDER BY queued_at LIMIT 10")).scalars()
        explain = text("EXPLAIN " + _CLAIM_FIRST_FREE_PG.element.text).bindparams(bindparam("now"))
        plan = "\n".join(
            conn.execute(
                explain,
                {
                    "ids": list(ids),
                    "status": "called",
                    "call_count": 1,
                    "now": floor.now,
                    "counter_id": "c",
                    "officer_id": None,
                },
            ).scalars()
        )
    assert "tickets_pkey on tickets" in plan, plan
    assert "ix_tickets_sla" not in plan, plan
    floor.engine.dispose()


def test_call_next_reads_past_heads_that_other_counters_all_hold(pg_url_factory):
    """More counters press at once than heads are read (ten per class): while ten counters hold
    the first ten tickets (their calls not yet committed), the eleventh still gets the eleventh
    ticket, not "no ticket waiting" (a busy morning's 404s with 2,000 tickets in line)."""
    from sqlalchemy import text

    from mpp_queue.usecases.tickets import LINE_HEADS

    floor, svc, counters = floor_with_counters(pg_url_factory, "heads", LINE_HEADS + 1)
    for _ in range(LINE_HEADS + 2):
        floor.advance(seconds=1)
        floor("take_ticket", {"service_id": svc["id"]}, settings=True)
    holders = [floor.uow() for _ in range(LINE_HEADS)]
    last = floor.uow()
    try:
        held = [
            usecases.call_next(uow, floor.settings, counter["id"], STAFF, now=floor.now)["number"]
            for uow, counter in zip(holders, counters, strict=False)
        ]
        assert sorted(held) == [f"A-{n:03d}" for n in range(1, LINE_HEADS + 1)]
        last.session.execute(text("SET lock_timeout = '2s'"))
        got = usecases.call_next(last, floor.settings, counters[-1]["id"], STAFF, now=floor.now)
        assert got["number"] == f"A-{LINE_HEADS + 1:03d}"
        for uow in (*holders, last):
            uow.commit()
    finally:
        for uow in (*holders, last):
            uow.session.close()
    assert len(floor.events("ticket_called")) == LINE_HEADS + 1
    floor.engine.dispose()


def test_a_place_leaked_by_a_killed_take_ticket_is_reconciled(pg_url_factory):
    """A kiosk's take-ticket claims a place (committed apart), then its process dies before the
    ticket commits: the place stays taken with no ticket, and the line refuses citizens under
    its quota. The sweep recounts the line from its tickets and the place is free again; a
    take-ticket mid-way (its claim counted, its ticket not yet committed) is not recounted away
    under it, so the quota still holds."""
    floor, svc, _ = floor_with_counters(pg_url_factory, "leak", 1)
    floor("update_service", svc["agency_id"], svc["id"], {"daily_quota": 2}, now=False)
    take = {"service_id": svc["id"]}
    floor("take_ticket", take, settings=True)
    killed = floor.uow()
    usecases.take_ticket(killed, floor.settings, take, now=floor.now)
    killed.session.close()  # the process died: its ticket never commits
    with pytest.raises(Conflict) as full:
        floor("take_ticket", take, settings=True)
    assert full.value.code == "QUOTA_EXHAUSTED", "the leaked place is still taken"

    assert floor("reconcile_quotas", settings=True) == 1
    mid_way = floor.uow()
    try:
        usecases.take_ticket(mid_way, floor.settings, take, now=floor.now)
        assert floor("reconcile_quotas", settings=True) == 0, "a line mid-take is left alone"
        mid_way.commit()
    finally:
        mid_way.session.close()
    assert floor("reconcile_quotas", settings=True) == 0, "two places, two tickets: no drift"
    with pytest.raises(Conflict) as full:
        floor("take_ticket", take, settings=True)
    assert full.value.code == "QUOTA_EXHAUSTED"
    floor.engine.dispose()
