"""Bookings on a real database: slots and capacity, the daily quota, the check-in window, the
no-show timer and the no-show penalty matched by NIK hash; booked tickets called at their slot."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from mpp_contracts.errors import Conflict, ValidationFailed
from tests.queue.usecases.conftest import OTHER_NIK, STAFF, VALID_NIK, setup_agency

HOURS = [{"opens": "08:00", "closes": "10:00"}, {"opens": "13:00", "closes": "14:00"}]
RULES = {
    "slot_minutes": 30,
    "capacity": 2,
    "daily_quota": 3,
    "early_minutes": 15,
    "late_minutes": 10,
}
SLOT_0800 = datetime(2026, 12, 1, 1, 0, tzinfo=UTC)  # 08:00 WIB
SLOT_0830 = SLOT_0800 + timedelta(minutes=30)
NIKS = [f"31710101019{n}000{n}" for n in range(5)]  # men born 1 Jan 1990-1994


@pytest.fixture
def booking_floor(floor):
    agency, svc = setup_agency(floor, opening_hours=HOURS, booking=RULES)
    floor.now = SLOT_0800 - timedelta(hours=2)
    return floor, agency, svc


def book(floor, svc, slot, nik=VALID_NIK, **data):
    return floor(
        "create_booking",
        {"service_id": svc["id"], "slot_start": slot.isoformat(), "nik": nik, **data},
        settings=True,
    )


def test_slots_come_from_opening_hours_with_capacity_and_quota(booking_floor):
    floor, _, svc = booking_floor
    slots = floor("list_slots", svc["id"], "2026-12-01", settings=True)
    starts = [s["start"][11:16] for s in slots["items"]]
    assert starts == ["08:00", "08:30", "09:00", "09:30", "13:00", "13:30"]
    assert slots["items"][0]["start"].endswith("+07:00")
    assert slots["quota_left"] == 3 and all(s["remaining"] == 2 for s in slots["items"])
    booking = book(floor, svc, SLOT_0800)
    assert booking["status"] == "booked" and booking["nik"] == "************0003"
    book(floor, svc, SLOT_0800, nik=OTHER_NIK)
    with pytest.raises(Conflict) as full:
        book(floor, svc, SLOT_0800, nik=NIKS[0])
    assert full.value.code == "SLOT_FULL"
    book(floor, svc, SLOT_0830, nik=NIKS[0])
    with pytest.raises(Conflict) as quota:
        book(floor, svc, SLOT_0830, nik=NIKS[1])
    assert quota.value.code == "QUOTA_EXHAUSTED"
    slots = floor("list_slots", svc["id"], "2026-12-01", settings=True)
    assert slots["quota_left"] == 0
    assert [s["remaining"] for s in slots["items"][:2]] == [0, 0]
    # cancelling gives the place back to the slot and to the day's quota
    floor("cancel_booking", booking["id"])
    slots = floor("list_slots", svc["id"], "2026-12-01", settings=True)
    assert slots["quota_left"] == 1 and slots["items"][0]["remaining"] == 1
    with pytest.raises(Conflict):
        floor("cancel_booking", booking["id"])


def test_bookings_refuse_bad_slots_duplicates_and_services_without_booking(booking_floor):
    floor, agency, svc = booking_floor
    with pytest.raises(ValidationFailed):
        book(floor, svc, SLOT_0800 + timedelta(minutes=10))
    with pytest.raises(ValidationFailed):
        book(floor, svc, SLOT_0800, nik="1234567890123456")
    book(floor, svc, SLOT_0800)
    with pytest.raises(Conflict) as twice:
        book(floor, svc, SLOT_0830)
    assert twice.value.code == "ALREADY_BOOKED"
    floor.now = SLOT_0800 + timedelta(minutes=11)
    with pytest.raises(Conflict) as passed:
        book(floor, svc, SLOT_0800, nik=OTHER_NIK)
    assert passed.value.code == "SLOT_PASSED"
    _, walk_in_only = setup_agency(floor, "SAMSAT", code="PKB", prefix="S")
    with pytest.raises(Conflict) as none:
        floor("list_slots", walk_in_only["id"], None, settings=True)
    assert none.value.code == "BOOKING_NOT_OFFERED"
    assert all(VALID_NIK not in str(e) for e in floor.events())


def test_check_in_window_and_the_booked_ticket_goes_first_at_its_slot(booking_floor):
    floor, agency, svc = booking_floor
    counter = floor(
        "add_counter", agency["id"], {"name": "1", "service_ids": [svc["id"]]}, now=False
    )
    on_time = book(floor, svc, SLOT_0800)
    late = book(floor, svc, SLOT_0800, nik=OTHER_NIK)
    floor.now = SLOT_0800 - timedelta(minutes=16)
    with pytest.raises(Conflict) as early:
        floor("check_in", on_time["id"], settings=True)
    assert early.value.code == "TOO_EARLY"
    floor.now = SLOT_0800 - timedelta(minutes=15)  # the window's first instant
    checked = floor("check_in", on_time["id"], settings=True)
    booked_ticket = checked["ticket"]
    assert checked["booking"]["status"] == "checked_in"
    assert booked_ticket["booked_slot_start"] == SLOT_0800.isoformat()
    # held until the slot: no position, the wait is the time to the slot
    assert booked_ticket["position"] is None and booked_ticket["estimated_wait_minutes"] == 15
    walk_in = floor("take_ticket", {"service_id": svc["id"]}, settings=True)
    assert floor("call_next", counter["id"], STAFF, settings=True)["id"] == walk_in["id"]
    floor.now = SLOT_0800 + timedelta(minutes=2)
    later = floor("take_ticket", {"service_id": svc["id"], "priority": "elderly"}, settings=True)
    assert floor("call_next", counter["id"], STAFF, settings=True)["id"] == booked_ticket["id"]
    assert floor("call_next", counter["id"], STAFF, settings=True)["id"] == later["id"]
    floor.now = SLOT_0800 + timedelta(minutes=10, seconds=1)
    lost = floor("check_in", late["id"], settings=True)
    assert lost["booking"]["status"] == "late"
    assert lost["ticket"]["booking_id"] is None and lost["ticket"]["booked_slot_start"] is None
    assert lost["ticket"]["position"] == 1
    with pytest.raises(Conflict):
        floor("check_in", late["id"], settings=True)
    kinds = [e["type"] for e in floor.events() if e["type"].startswith("booking_")]
    assert kinds == ["booking_created"] * 2 + ["booking_checked_in"] * 2


def test_a_late_check_in_is_a_walk_in_whether_or_not_the_timer_ran(booking_floor):
    """Arriving after the window gives a walk-in ticket and no strike, the same whether the
    no-show timer ran before the citizen arrived (it used to be 409 INVALID_BOOKING_STATE and a
    strike toward the block: the outcome depended on when the timer last ran)."""
    floor, _, svc = booking_floor
    days = [SLOT_0800 + timedelta(days=d) for d in (0, 7, 14)]
    for day in days:
        floor.now = day - timedelta(hours=1)
        booking = book(floor, svc, day)
        floor.now = day + timedelta(minutes=10, seconds=1)
        assert floor("sweep_no_shows", settings=True) == 1  # the timer ran first
        floor.now = day + timedelta(minutes=10, seconds=18)  # 18 s late
        late = floor("check_in", booking["id"], settings=True)
        assert late["booking"]["status"] == "late"
        assert late["ticket"]["status"] == "waiting" and late["ticket"]["booking_id"] is None
        assert floor("get_booking", booking["id"], now=False)["status"] == "late"
        # a late check-in takes no walk-in place: the quota sweep finds nothing to correct
        assert floor("reconcile_quotas", settings=True) == 0
    floor.now = days[-1] + timedelta(days=1)
    assert book(floor, svc, SLOT_0800 + timedelta(days=16))["status"] == "booked"  # no block


def test_no_show_timer_and_three_no_shows_block_booking(booking_floor):
    floor, _, svc = booking_floor
    days = [SLOT_0800 + timedelta(days=d) for d in (0, 7, 14)]
    for day in days:
        floor.now = day - timedelta(hours=1)
        booking = book(floor, svc, day)
        floor.now = day + timedelta(minutes=10)  # the window's last instant
        assert floor("sweep_no_shows", settings=True) == 0
        floor.now = day + timedelta(minutes=10, seconds=1)
        assert floor("sweep_no_shows", settings=True) == 1
        assert floor("get_booking", booking["id"], now=False)["status"] == "no_show"
        floor.now = day + timedelta(days=1)  # the next day the booking is gone for good
        with pytest.raises(Conflict):
            floor("check_in", booking["id"], settings=True)
    assert len(floor.events("booking_no_show")) == 3
    floor.now = days[-1] + timedelta(days=1)
    with pytest.raises(Conflict) as blocked:
        book(floor, svc, SLOT_0800 + timedelta(days=16))
    assert blocked.value.code == "BOOKING_BLOCKED"
    until = datetime.fromisoformat(blocked.value.details["blocked_until"])
    assert until == days[-1] + timedelta(minutes=10, days=30)
    book(floor, svc, SLOT_0800 + timedelta(days=16), nik=OTHER_NIK)  # someone else may book
    floor.now = until
    assert book(floor, svc, SLOT_0800 + timedelta(days=45))["status"] == "booked"
