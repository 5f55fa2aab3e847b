"""What the floor shows: the virtual ticket's position and ETA (checked against a simulated
day), the display snapshot and the KPIs (checked against a recomputation)."""

from __future__ import annotations

import math
import random
import statistics
from datetime import datetime, timedelta

import pytest

from mpp_contracts.errors import NotFound
from tests.queue.usecases.conftest import STAFF, setup_agency


def test_position_and_eta_follow_the_calling_rule_open_counters_and_recent_times(floor):
    agency, svc = setup_agency(floor)
    c1 = floor("add_counter", agency["id"], {"name": "1", "service_ids": [svc["id"]]}, now=False)
    tickets = []
    for priority in (None, None, "disability"):
        floor.advance(seconds=30)
        tickets.append(
            floor("take_ticket", {"service_id": svc["id"], "priority": priority}, settings=True)
        )
    views = [floor("get_ticket", t["id"], settings=True, actor=STAFF) for t in tickets]
    # the priority ticket is called first, then the regulars in arrival order
    assert [v["position"] for v in views] == [2, 3, 1]
    # no history yet: 300 s per citizen, one counter: ceil((ahead + 0.5) * 5 min)
    assert [v["estimated_wait_minutes"] for v in views] == [8, 13, 3]
    # two counters open halve it; none open: no promise
    c2 = floor("add_counter", agency["id"], {"name": "2", "service_ids": [svc["id"]]}, now=False)
    assert (
        floor("get_ticket", tickets[1]["id"], settings=True, actor=STAFF)["estimated_wait_minutes"]
        == 7
    )
    for c in (c1, c2):
        floor("update_counter", agency["id"], c["id"], {"is_open": False}, now=False)
    assert (
        floor("get_ticket", tickets[1]["id"], settings=True, actor=STAFF)["estimated_wait_minutes"]
        is None
    )
    floor("update_counter", agency["id"], c1["id"], {"is_open": True}, now=False)
    # recent serving times replace the default: a 60 s service
    called = floor("call_next", c1["id"], STAFF, settings=True)
    floor("ticket_action", called["id"], "start", {}, STAFF, settings=True)
    floor.advance(seconds=60)
    floor("ticket_action", called["id"], "complete", {}, STAFF, settings=True)
    view = floor("get_ticket", tickets[1]["id"], settings=True, actor=STAFF)
    assert view["position"] == 2 and view["estimated_wait_minutes"] == 2  # (1 + 0.5) * 1 min
    assert floor("get_ticket", called["id"], settings=True, actor=STAFF)["position"] is None


def test_eta_on_a_simulated_day(floor):
    """An 8-hour first-come-first-served day driven through the use cases: every citizen is
    quoted the estimate the ticket shows at issue; the quotes are compared with the real waits
    (tolerance of docs/queue-rules.md: bias within 20 % + 1 min, absolute error within 40 % +
    1 min of the mean wait)."""
    agency, svc = setup_agency(floor)
    counters = [
        floor("add_counter", agency["id"], {"name": str(i), "service_ids": [svc["id"]]}, now=False)
        for i in (1, 2, 3)
    ]
    rng = random.Random(20261201)
    mean_service, load = 300.0, 0.85
    sigma = 0.5
    mu = math.log(mean_service) - sigma**2 / 2
    start = floor.now
    end = start + timedelta(hours=8)
    next_arrival = start + timedelta(seconds=rng.expovariate(load * 3 / mean_service))
    busy_until: dict[str, datetime | None] = {c["id"]: None for c in counters}
    serving: dict[str, str] = {}
    quotes: dict[str, int] = {}
    while True:
        moments = [t for t in busy_until.values() if t is not None]
        if next_arrival < end:
            moments.append(next_arrival)
        if not moments:
            break
        floor.now = min(moments)
        for counter_id, until in busy_until.items():
            if until is not None and until <= floor.now:
                floor(
                    "ticket_action", serving.pop(counter_id), "complete", {}, STAFF, settings=True
                )
                busy_until[counter_id] = None
        if next_arrival <= floor.now and next_arrival < end:
            ticket = floor("take_ticket", {"service_id": svc["id"]}, settings=True)
            quotes[ticket["id"]] = ticket["estimated_wait_minutes"]
            next_arrival = floor.now + timedelta(seconds=rng.expovariate(load * 3 / mean_service))
        for counter_id, until in busy_until.items():
            if until is None:
                try:
                    called = floor("call_next", counter_id, STAFF, settings=True)
                except NotFound:
                    break  # nobody waiting
                floor("ticket_action", called["id"], "start", {}, STAFF, settings=True)
                serving[counter_id] = called["id"]
                busy_until[counter_id] = floor.now + timedelta(
                    seconds=rng.lognormvariate(mu, sigma)
                )
    errors, waits = [], []
    for ticket_id, quote in quotes.items():
        view = floor("get_ticket", ticket_id, settings=True, actor=STAFF)
        assert view["status"] == "done"
        wait = (
            datetime.fromisoformat(view["called_at"]) - datetime.fromisoformat(view["issued_at"])
        ).total_seconds() / 60
        waits.append(wait)
        errors.append(quote - wait)
    mean_wait = statistics.mean(waits)
    assert len(quotes) > 200
    assert abs(statistics.mean(errors)) <= 0.2 * mean_wait + 1
    assert statistics.mean(abs(e) for e in errors) <= 0.4 * mean_wait + 1


def test_display_snapshot_shows_current_calls_and_recent_announcements(floor):
    agency, svc = setup_agency(floor)
    other, other_svc = setup_agency(floor, "SAMSAT", code="PKB", prefix="S")
    c1 = floor(
        "add_counter", agency["id"], {"name": "Loket 1", "service_ids": [svc["id"]]}, now=False
    )
    c2 = floor("add_counter", agency["id"], {"name": "2", "service_ids": [svc["id"]]}, now=False)
    c9 = floor(
        "add_counter", other["id"], {"name": "9", "service_ids": [other_svc["id"]]}, now=False
    )
    for s in (svc, svc, svc, other_svc):
        floor.advance(seconds=5)
        floor("take_ticket", {"service_id": s["id"]}, settings=True)
    floor.advance(seconds=5)
    first = floor("call_next", c1["id"], STAFF, settings=True)
    floor("ticket_action", first["id"], "start", {}, STAFF, settings=True)
    floor("ticket_action", first["id"], "complete", {}, STAFF, settings=True)
    floor.advance(seconds=5)
    second = floor("call_next", c1["id"], STAFF, settings=True)
    floor.advance(seconds=5)
    floor("ticket_action", second["id"], "recall", {}, STAFF, settings=True)
    floor("call_next", c9["id"], STAFF, settings=True)
    board = floor("display_snapshot", settings=True, agency_id=agency["id"], recent=10)
    by_counter = {c["counter_id"]: c for c in board["counters"]}
    assert set(by_counter) == {c1["id"], c2["id"]}
    assert by_counter[c1["id"]]["current"]["number"] == "A-002"
    assert by_counter[c1["id"]]["current"]["announcement"] == (
        "Nomor antrean A-002, silakan menuju loket 1"
    )
    assert by_counter[c2["id"]]["current"] is None
    assert [(c["number"], c["kind"]) for c in board["recent_calls"]] == [
        ("A-002", "recall"),
        ("A-002", "call"),
        ("A-001", "call"),
    ]
    everyone = floor("display_snapshot", settings=True)
    assert len(everyone["counters"]) == 3 and everyone["recent_calls"][0]["number"] == "S-001"
    event = floor.events("ticket_recalled")[-1]["payload"]
    assert event["announcement"] == "Nomor antrean A-002, silakan menuju loket 1"
    assert event["spoken_announcement"] == "Nomor antrean a, dua, silakan menuju loket satu"


def nearest_rank(values, p):
    values = sorted(values)
    return values[max(math.ceil(p / 100 * len(values)), 1) - 1]


def test_queue_stats_match_a_recomputation_from_the_tickets(floor):
    agency, ktp = setup_agency(floor, sla_minutes=20)
    kk = floor(
        "plug_service",
        agency["id"],
        {"code": "KK", "name": "KK", "fee_idr": 0, "sla_minutes": 30, "prefix": "B"},
        now=False,
    )
    c1 = floor(
        "add_counter", agency["id"], {"name": "1", "service_ids": [ktp["id"], kk["id"]]}, now=False
    )
    rng = random.Random(7)
    ids = []
    for i in range(12):
        floor.advance(seconds=rng.randint(10, 120))
        service = ktp if i % 3 else kk
        ids.append(floor("take_ticket", {"service_id": service["id"]}, settings=True)["id"])
    outcomes = ["complete"] * 7 + ["no-show", "cancel", "transfer", "complete", "complete"]
    for outcome in outcomes:
        floor.advance(seconds=rng.randint(30, 400))
        t = floor("call_next", c1["id"], STAFF, settings=True)
        if outcome == "no-show":
            for _ in range(2):
                floor("ticket_action", t["id"], "recall", {}, STAFF, settings=True)
            floor("ticket_action", t["id"], "no-show", {}, STAFF, settings=True)
            continue
        if outcome == "cancel":
            floor("ticket_action", t["id"], "cancel", {}, STAFF, settings=True)
            continue
        floor("ticket_action", t["id"], "start", {}, STAFF, settings=True)
        floor.advance(seconds=rng.randint(60, 600))
        if outcome == "transfer":
            target = kk if t["service_id"] == ktp["id"] else ktp
            floor(
                "ticket_action",
                t["id"],
                "transfer",
                {"to_service_id": target["id"]},
                STAFF,
                settings=True,
            )
        else:
            floor("ticket_action", t["id"], "complete", {}, STAFF, settings=True)
    floor("sweep_sla", settings=True)
    stats = floor("queue_stats", settings=True, agency_id=agency["id"], day="2026-12-01")
    views = [floor("get_ticket", i, settings=True, actor=STAFF) for i in ids]
    views.append(
        floor(
            "get_ticket",
            next(v for v in views if v["transferred_to"])["transferred_to"]["id"],
            settings=True,
            actor=STAFF,
        )
    )

    def seconds(a, b):
        return (datetime.fromisoformat(b) - datetime.fromisoformat(a)).total_seconds()

    waits = [seconds(v["issued_at"], v["called_at"]) for v in views if v["called_at"]]
    serves = [seconds(v["started_at"], v["completed_at"]) for v in views if v["completed_at"]]
    overall = stats["overall"]
    assert overall["tickets"] == 13
    assert overall["served"] == sum(v["status"] == "done" for v in views) == 9
    assert overall["no_shows"] == 1 and overall["cancelled"] == 1 and overall["transfers"] == 1
    assert overall["sla_breaches"] == sum(v["sla"]["breached"] for v in views) > 0
    assert overall["waiting"]["count"] == len(waits)
    assert overall["waiting"]["mean_seconds"] == pytest.approx(statistics.mean(waits), abs=1e-3)
    assert overall["waiting"]["median_seconds"] == pytest.approx(nearest_rank(waits, 50))
    assert overall["waiting"]["p90_seconds"] == pytest.approx(nearest_rank(waits, 90))
    assert overall["serving"]["p90_seconds"] == pytest.approx(nearest_rank(serves, 90))
    by_service = {s["service_id"]: s for s in stats["by_service"]}
    assert sum(s["tickets"] for s in by_service.values()) == 13
    assert [c["counter_id"] for c in stats["by_counter"]] == [c1["id"]]
    # hour by hour in the mall's zone (the floor opens at 08:00 WIB): the same tickets, served
    # and waits, each wait in its citizen's hour of arrival
    hours = stats["by_hour"]
    assert [h["hour"] for h in hours] == list(range(24))
    assert sum(h["taken"] for h in hours) == 13 and hours[8]["taken"] > 0
    assert sum(h["served"] for h in hours) == overall["served"]
    assert sum(h["waiting"]["count"] for h in hours) == len(waits)
    arrived_at_8 = [
        seconds(v["issued_at"], v["called_at"])
        for v in views
        if v["called_at"] and datetime.fromisoformat(v["issued_at"]).hour == 1  # 08 WIB
    ]
    assert hours[8]["waiting"]["median_seconds"] == pytest.approx(nearest_rank(arrived_at_8, 50))
    assert floor("queue_stats", settings=True, day="2026-12-02")["overall"]["tickets"] == 0
