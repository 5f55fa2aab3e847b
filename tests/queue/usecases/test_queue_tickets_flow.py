"""Tickets on a real database: numbering, calling fairness per counter, out-of-order calls,
transitions, transfers, catalogue changes that lose nothing, SLA breaches once."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from mpp_contracts.errors import Conflict, Forbidden, NotFound, ValidationFailed
from mpp_queue.adapters.tables import calls
from tests.queue.usecases.conftest import STAFF, VALID_NIK, setup_agency


def take(floor, service, **data):
    floor.advance(seconds=1)  # distinct arrival times: the line order is then unambiguous
    return floor("take_ticket", {"service_id": service["id"], **data}, settings=True)


def counter(floor, agency, services, name="1", **data):
    return floor(
        "add_counter",
        agency["id"],
        {"name": name, "service_ids": [s["id"] for s in services], **data},
        now=False,
    )


def test_numbers_follow_the_line_and_restart_at_local_midnight(floor):
    agency, svc = setup_agency(floor)
    assert [take(floor, svc)["number"] for _ in range(3)] == ["A-001", "A-002", "A-003"]
    # 16:59:59 UTC is 23:59:59 in Jakarta: still the same mall day
    floor.now = floor.now.replace(hour=16, minute=59, second=58)
    assert take(floor, svc)["number"] == "A-004"  # take() advances 1 s: 23:59:59 local
    assert take(floor, svc)["number"] == "A-001"


def test_a_keyed_take_issues_one_ticket_however_often_it_arrives(floor):
    """A kiosk's retry that the gateway let through (it took over the key of a gateway that died
    mid-request) carries the same request key: it gets the first ticket, and no number is used."""
    _, svc = setup_agency(floor)
    key, other = "a" * 64, "b" * 64
    first = floor("take_ticket", {"service_id": svc["id"]}, settings=True, request_key=key)
    floor.advance(seconds=30)
    again = floor("take_ticket", {"service_id": svc["id"]}, settings=True, request_key=key)
    assert again["id"] == first["id"] and again["number"] == "A-001"
    assert again["issued_at"] == first["issued_at"]
    assert floor("take_ticket", {"service_id": svc["id"]}, settings=True)["number"] == "A-002"
    keyed = floor("take_ticket", {"service_id": svc["id"]}, settings=True, request_key=other)
    assert keyed["number"] == "A-003"
    assert len(floor.events("ticket_issued")) == 3
    # two workers that both missed the key's ticket: the second insert is refused by the
    # unique key (the service then answers with the first's ticket, tested through it)
    with pytest.raises(IntegrityError):
        floor("issue_ticket", {"service_id": svc["id"]}, settings=True, request_key=key)


def test_ticket_ids_are_unguessable_and_nik_is_never_kept_whole(floor):
    agency, svc = setup_agency(floor)
    ticket = take(floor, svc, nik=VALID_NIK, phone="081234567890")
    assert len(ticket["id"]) == 36 and ticket["id"].count("-") == 4
    assert ticket["nik_last4"] == "0003"
    assert VALID_NIK not in str(ticket)
    assert all(VALID_NIK not in str(e) for e in floor.events())
    with pytest.raises(ValidationFailed) as bad:
        take(floor, svc, nik="3171014506900")
    assert "nik" in bad.value.details and VALID_NIK[:13] not in str(bad.value.details)


def test_quota_counts_walk_ins(floor):
    agency, svc = setup_agency(floor, daily_quota=2)
    take(floor, svc)
    take(floor, svc)
    with pytest.raises(Conflict) as full:
        take(floor, svc)
    assert full.value.code == "QUOTA_EXHAUSTED"
    # a refusal counts no place (and, on PostgreSQL, draws no number)
    assert issued_today(floor, svc) == 2


def test_the_quota_sweep_sets_a_drifted_count_back_to_the_walk_ins(floor):
    """Whatever made the count drift (on PostgreSQL, a take-ticket killed between its claim and
    its commit: tests/queue/usecases/test_queue_concurrency_pg.py), the sweep recounts it."""
    from sqlalchemy import update

    from mpp_queue.adapters.tables import service_day_counts

    agency, svc = setup_agency(floor, daily_quota=2)
    take(floor, svc)
    assert floor("reconcile_quotas", settings=True) == 0
    with floor.engine.begin() as conn:
        conn.execute(update(service_day_counts).values(issued=2))
    with pytest.raises(Conflict):
        take(floor, svc)
    assert floor("reconcile_quotas", settings=True) == 1
    assert issued_today(floor, svc) == 1
    take(floor, svc)
    assert issued_today(floor, svc) == 2


def issued_today(floor, svc) -> int:
    from sqlalchemy import select

    from mpp_queue.adapters.tables import service_day_counts

    with floor.engine.connect() as conn:
        return conn.execute(
            select(service_day_counts.c.issued).where(service_day_counts.c.service_id == svc["id"])
        ).scalar_one()


def test_a_ticket_that_cannot_be_stored_gives_its_place_back(floor, monkeypatch):
    """On PostgreSQL the place and number are claimed in a statement of their own (the line's hot
    rows stay locked only for that statement); when the ticket then fails to be stored, the place
    returns to the day's quota and the number stays unused, like a voided paper ticket."""
    from mpp_chassis.db import UnitOfWork

    agency, svc = setup_agency(floor, daily_quota=2)
    assert take(floor, svc)["number"] == "A-001"

    def broken_insert(*args, **kwargs):
        raise RuntimeError("the database went away mid-ticket")

    with monkeypatch.context() as patch:
        patch.setattr(UnitOfWork, "execute_with_event", broken_insert)  # the ticket's insert
        with pytest.raises(RuntimeError):
            take(floor, svc)
    assert issued_today(floor, svc) == 1, "the failed ticket's place is back"
    second = take(floor, svc)
    assert second["number"] in ("A-002", "A-003")  # A-002 stays unused on PostgreSQL
    with pytest.raises(Conflict):
        take(floor, svc)
    assert len(floor.events("ticket_issued")) == 2


def test_call_next_serves_priority_with_a_streak_per_counter_and_never_starves(floor):
    agency, svc = setup_agency(floor)
    c1 = counter(floor, agency, [svc], "1")
    c2 = counter(floor, agency, [svc], "2")
    regular = [take(floor, svc) for _ in range(2)]
    floor.advance(minutes=1)
    priority = [take(floor, svc, priority="elderly") for _ in range(4)]
    called = []
    for _ in range(3):
        floor.advance(seconds=10)
        called.append(floor("call_next", c1["id"], STAFF, settings=True)["id"])
    # max streak 2: two priority, then the longest-waiting regular
    assert called == [priority[0]["id"], priority[1]["id"], regular[0]["id"]]
    # counter 2 has its own streak (0): it starts with priority
    assert floor("call_next", c2["id"], STAFF, settings=True)["id"] == priority[2]["id"]


def test_booked_ticket_called_first_once_its_slot_started(floor):
    # covered end to end in test_queue_bookings_flow; here: call order reads booked slots
    agency, svc = setup_agency(floor)
    c1 = counter(floor, agency, [svc])
    t = take(floor, svc)
    assert floor("call_next", c1["id"], STAFF, settings=True)["id"] == t["id"]
    with pytest.raises(NotFound) as none:
        floor("call_next", c1["id"], STAFF, settings=True)
    assert none.value.code == "NO_TICKET_WAITING"


def _moment(value) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(value)


def test_a_ticket_issued_after_the_press_arrived_is_called_at_its_issue_not_before(floor):
    """A press's time is taken when it arrives; a ticket issued after that (by another queue
    process, or while a group gathers) can still be the one it claims. Its call is then stamped
    at its issue, never before (seen in the simulated morning, by 1.7 ms)."""
    agency, svc = setup_agency(floor)
    desk = counter(floor, agency, [svc], "5")
    pressed = floor.now
    first = take(floor, svc)  # one second after the press arrived
    floor.now, issued = pressed, floor.now
    called = floor("call_next", desk["id"], STAFF, settings=True)
    assert called["id"] == first["id"]
    assert _moment(called["called_at"]) == _moment(first["issued_at"]) == issued
    floor.now = issued
    pressed = floor.now
    second = take(floor, svc)
    floor.now, issued = pressed, floor.now
    out_of_order = floor("call_ticket", second["id"], desk["id"], STAFF, settings=True)
    assert _moment(out_of_order["called_at"]) == _moment(second["issued_at"]) == issued
    floor.now = issued
    events = floor.events("ticket_called")
    assert [_moment(e["payload"]["called_at"]) for e in events] == [
        _moment(first["issued_at"]),
        _moment(second["issued_at"]),
    ]
    with floor.engine.connect() as conn:
        stored = conn.execute(select(calls.c.called_at).order_by(calls.c.called_at)).scalars()
        assert list(stored) == [_moment(first["issued_at"]), _moment(second["issued_at"])]
    # a press after the ticket's issue keeps its own time
    third = take(floor, svc)
    later = floor.advance(seconds=30)
    assert _moment(floor("call_next", desk["id"], STAFF, settings=True)["called_at"]) == later
    assert _moment(third["issued_at"]) < later
    # a transferred citizen's new ticket is queued at her first arrival, long before the press,
    # yet issued at the transfer: it is called at its issue
    samsat, pkb = setup_agency(floor, "SAMSAT", code="PKB", prefix="S")
    desk_pkb = counter(floor, samsat, [pkb], "7")
    floor("ticket_action", third["id"], "start", {}, STAFF, settings=True)
    pressed = floor.advance(seconds=30)
    issued = floor.advance(seconds=1)
    moved = floor(
        "ticket_action", third["id"], "transfer", {"to_service_id": pkb["id"]}, STAFF, settings=True
    )
    floor.now = pressed
    new = floor("call_next", desk_pkb["id"], STAFF, settings=True)
    assert new["id"] == moved["transferred_to"]["id"]
    assert _moment(new["queued_at"]) == _moment(third["issued_at"]) < pressed
    assert _moment(new["called_at"]) == _moment(new["issued_at"]) == issued
    # a press's time given in the mall's own zone is stored as the same instant
    fourth = take(floor, svc)
    floor.now = floor.advance(seconds=30).astimezone(ZoneInfo("Asia/Jakarta"))
    called = floor("call_next", desk["id"], STAFF, settings=True)
    assert called["id"] == fourth["id"] and _moment(called["called_at"]) == floor.now


def test_counter_serves_only_its_services_and_closed_counters_do_not_call(floor):
    agency, ktp = setup_agency(floor)
    kk = floor(
        "plug_service",
        agency["id"],
        {"code": "KK", "name": "Kartu Keluarga", "fee_idr": 0, "sla_minutes": 30, "prefix": "B"},
        now=False,
    )
    c_ktp = counter(floor, agency, [ktp])
    take(floor, kk)
    with pytest.raises(NotFound):
        floor("call_next", c_ktp["id"], STAFF, settings=True)
    floor("update_counter", agency["id"], c_ktp["id"], {"is_open": False}, now=False)
    with pytest.raises(Conflict) as closed:
        floor("call_next", c_ktp["id"], STAFF, settings=True)
    assert closed.value.code == "COUNTER_CLOSED"
    assert [e["type"] for e in floor.events() if e["type"].startswith("counter_")] == [
        "counter_opened",
        "counter_closed",
    ]


def test_call_a_specific_ticket_out_of_order(floor):
    agency, svc = setup_agency(floor)
    c1 = counter(floor, agency, [svc], "3")
    first = take(floor, svc)
    floor.advance(minutes=1)
    third_in_line = [take(floor, svc) for _ in range(2)][1]
    called = floor(
        "ticket_action",
        third_in_line["id"],
        "call",
        {"counter_id": c1["id"]},
        STAFF,
        settings=True,
    )
    assert called["status"] == "called" and called["counter_name"] == "3"
    event = floor.events("ticket_called")[-1]["payload"]
    assert event["out_of_order"] is True
    assert (
        event["announcement"] == f"Nomor antrean {third_in_line['number']}, silakan menuju loket 3"
    )
    # calling it again is a conflict; the line still starts with the first ticket
    with pytest.raises(Conflict):
        floor("call_ticket", third_in_line["id"], c1["id"], STAFF, settings=True)
    assert floor("call_next", c1["id"], STAFF, settings=True)["id"] == first["id"]
    with pytest.raises(ValidationFailed):
        floor("ticket_action", first["id"], "call", {}, STAFF, settings=True)


def test_transitions_and_invalid_ones_are_409(floor):
    agency, svc = setup_agency(floor)
    c1 = counter(floor, agency, [svc])
    t = take(floor, svc)
    with pytest.raises(Conflict) as early:
        floor("ticket_action", t["id"], "start", {}, STAFF, settings=True)
    assert early.value.details["reason"] == "not_allowed"
    floor("call_next", c1["id"], STAFF, settings=True)
    with pytest.raises(Conflict) as few:
        floor("ticket_action", t["id"], "no-show", {}, STAFF, settings=True)
    assert few.value.details["reason"] == "too_few_calls"
    for _ in range(2):
        floor.advance(minutes=1)
        recalled = floor("ticket_action", t["id"], "recall", {}, STAFF, settings=True)
    assert recalled["call_count"] == 3
    assert len(floor.events("ticket_recalled")) == 2
    done = floor("ticket_action", t["id"], "no-show", {"reason": "absent"}, STAFF, settings=True)
    assert done["status"] == "no_show"
    for action in ("recall", "start", "complete", "cancel", "transfer", "no-show"):
        with pytest.raises((Conflict, ValidationFailed)):
            floor(
                "ticket_action", t["id"], action, {"to_service_id": svc["id"]}, STAFF, settings=True
            )
    with pytest.raises(NotFound):
        floor("ticket_action", t["id"], "dance", {}, STAFF, settings=True)


def test_officer_of_another_agency_is_refused(floor):
    agency, svc = setup_agency(floor)
    c1 = counter(floor, agency, [svc])
    take(floor, svc)
    intruder = {"role": "officer", "agency_id": "someone-else", "key_id": "k"}
    with pytest.raises(Forbidden):
        floor("call_next", c1["id"], intruder, settings=True)


def test_transfer_keeps_the_journey_and_the_original_arrival(floor):
    dukcapil, ktp = setup_agency(floor)
    samsat, pkb = setup_agency(floor, "SAMSAT", code="PKB", prefix="S", fee_idr=50000)
    c_ktp = counter(floor, dukcapil, [ktp])
    c_pkb = counter(floor, samsat, [pkb])
    citizen = take(floor, ktp, priority="pregnant", nik=VALID_NIK)
    floor.advance(minutes=5)
    later = take(floor, pkb)
    floor.advance(minutes=1)
    floor("call_next", c_ktp["id"], STAFF, settings=True)
    floor("ticket_action", citizen["id"], "start", {}, STAFF, settings=True)
    floor.advance(minutes=3)
    old = floor(
        "ticket_action",
        citizen["id"],
        "transfer",
        {"to_service_id": pkb["id"]},
        STAFF,
        settings=True,
    )
    assert old["status"] == "transferred" and old["transferred_to"]["number"] == "S-002"
    new = floor("get_ticket", old["transferred_to"]["id"], settings=True, actor=STAFF)
    assert new["journey_id"] == citizen["journey_id"] and new["transferred_from"] == citizen["id"]
    assert new["queued_at"] == citizen["issued_at"] and new["priority"] == "pregnant"
    assert new["fee_idr"] == 50000 and new["nik_last4"] == "0003"
    # queued at the original arrival, she is ahead of the later walk-in (and priority anyway)
    assert new["position"] == 1
    assert floor("call_next", c_pkb["id"], STAFF, settings=True)["id"] == new["id"]
    assert floor("get_ticket", later["id"], settings=True, actor=STAFF)["position"] == 1
    event = floor.events("ticket_transferred")[-1]["payload"]
    assert event["new_ticket_id"] == new["id"] and event["to_agency_id"] == samsat["id"]
    issued = floor.events("ticket_issued")[-1]["payload"]
    assert issued["transferred_from"] == citizen["id"]
    # a transfer takes no place of the target's quota: the quota sweep finds nothing to correct
    assert floor("reconcile_quotas", settings=True) == 0


def test_unplugging_a_service_or_closing_a_counter_loses_no_ticket(floor):
    agency, svc = setup_agency(floor)
    c1 = counter(floor, agency, [svc])
    waiting = [take(floor, svc) for _ in range(2)]
    floor("call_next", c1["id"], STAFF, settings=True)
    floor("update_counter", agency["id"], c1["id"], {"is_open": False}, now=False)
    # the called ticket can still be served at the closed counter
    floor("ticket_action", waiting[0]["id"], "start", {}, STAFF, settings=True)
    unplugged = floor("unplug_service", agency["id"], svc["id"], now=False)
    assert unplugged["active"] is False
    assert floor.events("service_unplugged")[-1]["payload"]["waiting_tickets"] == 1
    with pytest.raises(NotFound):
        take(floor, svc)
    assert floor("list_services", now=False)["items"] == []
    floor("update_counter", agency["id"], c1["id"], {"is_open": True}, now=False)
    assert floor("call_next", c1["id"], STAFF, settings=True)["id"] == waiting[1]["id"]
    with pytest.raises(Conflict):
        floor("update_service", agency["id"], svc["id"], {"name": "Lagi"}, now=False)


def test_an_officer_opens_and_closes_their_counter_but_not_on_a_citizen(floor):
    agency, svc = setup_agency(floor)
    c1 = counter(floor, agency, [svc])
    officer = {"role": "officer", "agency_id": agency["id"], "key_id": "k"}
    stranger = {"role": "officer", "agency_id": "someone-else", "key_id": "s"}
    with pytest.raises(Forbidden):
        floor("set_counter_open", c1["id"], False, stranger, now=False)
    with pytest.raises(NotFound):
        floor("set_counter_open", "no-such-counter", False, officer, now=False)
    t = take(floor, svc)
    floor("call_next", c1["id"], officer, settings=True)
    # a citizen called to the desk: the officer may not close on them
    with pytest.raises(Conflict) as busy:
        floor("set_counter_open", c1["id"], False, officer, now=False)
    assert busy.value.code == "COUNTER_BUSY" and busy.value.details["tickets"] == [t["number"]]
    floor("ticket_action", t["id"], "start", {}, officer, settings=True)
    with pytest.raises(Conflict):
        floor("set_counter_open", c1["id"], False, officer, now=False)
    floor("ticket_action", t["id"], "complete", {}, officer, settings=True)
    closed = floor("set_counter_open", c1["id"], False, officer, now=False)
    assert closed["is_open"] is False
    assert floor.events("counter_closed")[-1]["payload"]["counter_id"] == c1["id"]
    take(floor, svc)
    with pytest.raises(Conflict) as dark:
        floor("call_next", c1["id"], officer, settings=True)
    assert dark.value.code == "COUNTER_CLOSED"
    # closing twice (a retried press) leaves it closed; opening lets it call again
    assert floor("set_counter_open", c1["id"], False, officer, now=False)["is_open"] is False
    assert floor("set_counter_open", c1["id"], True, officer, now=False)["is_open"] is True
    assert floor.events("counter_opened")[-1]["payload"]["counter_id"] == c1["id"]
    assert floor("call_next", c1["id"], officer, settings=True)["status"] == "called"


def test_service_changes_are_events_and_do_not_rewrite_issued_tickets(floor):
    agency, svc = setup_agency(floor, fee_idr=10000)
    before = take(floor, svc)
    changed = floor(
        "update_service",
        agency["id"],
        svc["id"],
        {"fee_idr": 20000, "prefix": "K", "sla_minutes": 15},
        now=False,
    )
    assert changed["fee_idr"] == 20000 and changed["prefix"] == "K"
    after = take(floor, svc)
    assert after["number"] == "K-001" and after["fee_idr"] == 20000
    kept = floor("get_ticket", before["id"], settings=True, actor=STAFF)
    assert kept["number"] == "A-001" and kept["fee_idr"] == 10000 and kept["sla"]["minutes"] == 60
    payload = floor.events("service_updated")[-1]["payload"]
    assert payload["fee_idr"] == 20000 and payload["service_id"] == svc["id"]
    assert floor.events("service_plugged")[-1]["payload"]["version"] == 1
    assert payload["version"] == 2  # each change gives the next version, in the event too
    floor("update_service", agency["id"], svc["id"], {"name": "Paspor baru"}, now=False)
    renamed = floor.events("service_updated")[-1]["payload"]
    assert renamed["version"] == 3 and renamed["fee_idr"] == 20000
    with pytest.raises(NotFound):
        floor("update_service", "other-agency", svc["id"], {"name": "X"}, now=False)
    with pytest.raises(ValidationFailed):
        floor(
            "update_service",
            agency["id"],
            svc["id"],
            {"booking": {"slot_minutes": 15, "capacity": 2, "early_minutes": 0, "late_minutes": 0}},
            now=False,
        )


def test_lists_are_paginated_by_cursor(floor):
    agency, _ = setup_agency(floor)
    for code in ("KK", "AKTA", "PINDAH"):
        floor(
            "plug_service",
            agency["id"],
            {"code": code, "name": code, "fee_idr": 0, "sla_minutes": 30, "prefix": "B"},
            now=False,
        )
    first = floor("list_services", agency["id"], None, 3, now=False)
    assert [s["code"] for s in first["items"]] == ["AKTA", "KK", "KTP"]
    second = floor("list_services", agency["id"], first["next_cursor"], 3, now=False)
    assert [s["code"] for s in second["items"]] == ["PINDAH"] and second["next_cursor"] is None
    with pytest.raises(ValidationFailed):
        floor("list_services", None, "garbage!", 3, now=False)
    with pytest.raises(ValidationFailed):
        floor("list_services", None, first["next_cursor"][:-4] + "AAAA", 3, now=False)


def test_sla_breach_is_emitted_once_by_timer_or_by_the_ending_action(floor):
    agency, svc = setup_agency(floor, sla_minutes=10)
    c1 = counter(floor, agency, [svc])
    slow = take(floor, svc)
    quick = take(floor, svc)
    floor.advance(minutes=10, seconds=-1)  # exactly at the first deadline: no breach
    assert floor("sweep_sla", settings=True) == 0
    floor.advance(seconds=2)
    assert floor("sweep_sla", settings=True) == 2
    assert floor("sweep_sla", settings=True) == 0
    floor("call_next", c1["id"], STAFF, settings=True)
    floor("ticket_action", slow["id"], "start", {}, STAFF, settings=True)
    floor("ticket_action", slow["id"], "complete", {}, STAFF, settings=True)
    breaches = floor.events("sla_breached")
    assert sorted(b["payload"]["ticket_id"] for b in breaches) == sorted([slow["id"], quick["id"]])
    assert {b["payload"]["stage"] for b in breaches} == {"waiting"}
    # a ticket that ends late without the timer having run is flagged by the ending action
    late = take(floor, svc)
    floor.advance(minutes=11)
    floor("call_next", c1["id"], STAFF, settings=True)  # quick
    floor("call_next", c1["id"], STAFF, settings=True)  # late
    floor("ticket_action", late["id"], "start", {}, STAFF, settings=True)
    floor("ticket_action", late["id"], "complete", {}, STAFF, settings=True)
    assert floor("sweep_sla", settings=True) == 0  # quick, still open, was flagged already
    assert len(floor.events("sla_breached")) == 3
    assert floor("get_ticket", late["id"], settings=True, actor=STAFF)["sla"]["breached"] is True


def test_tickets_left_open_from_yesterday_are_closed(floor):
    agency, svc = setup_agency(floor)
    t = take(floor, svc)
    floor.advance(days=1)
    assert floor("close_past_days", settings=True) == 1
    view = floor("get_ticket", t["id"], settings=True, actor=STAFF)
    assert view["status"] == "cancelled"
    assert floor.events("ticket_cancelled")[-1]["payload"]["reason"] == "day_closed"


@pytest.mark.parametrize(
    ("tz", "utc_midnight_hour"),
    [("Asia/Jakarta", 17), ("Asia/Makassar", 16), ("Asia/Jayapura", 15)],
)
def test_numbers_restart_at_the_local_midnight_of_each_zone(floor, tz, utc_midnight_hour):
    from dataclasses import replace

    floor.settings = replace(floor.settings, mall_timezone=tz)
    agency, svc = setup_agency(floor)
    floor.now = floor.now.replace(hour=utc_midnight_hour - 1, minute=59, second=57)
    assert [take(floor, svc)["number"] for _ in range(2)] == ["A-001", "A-002"]  # 23:59:59
    fresh = take(floor, svc)  # 00:00:00 local, the next mall day
    assert fresh["number"] == "A-001"
    stats = floor("queue_stats", settings=True, agency_id=agency["id"])
    assert stats["overall"]["tickets"] == 1 and stats["timezone"] == tz
