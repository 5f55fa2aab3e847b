"""A simulated morning through the gateway, on PostgreSQL with two queue-service processes.

Three agencies, six counters, 200 citizens (a quarter of them in priority categories, ten with
bookings checked in at the kiosk, some with a NIK), a cross-agency transfer, no-shows, a
cancellation, a service unplugged mid-morning and a counter closed and reopened. Officers at the
six counters call concurrently. At the end every ticket is in a legal final state, no ticket was
called twice, the booked citizens went first, the regular line was never starved, and
``GET /v1/stats/queue`` matches a recomputation from the tickets themselves.
"""

from __future__ import annotations

import math
import statistics
import uuid
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import eventlet
import pytest
import requests

from tests.support.infra import wait_until
from tests.support.mall import MALL_ADMIN_KEY

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]

CITIZENS = 200
BOOKED = 10
MAX_STREAK = 3
PRIORITIES = ("elderly", "disability", "pregnant", "nursing", "children")


def bearer(key: str) -> dict:
    return {"Authorization": f"Bearer {key}"}


def quiet_zone() -> str:
    """The zone whose local time is furthest from midnight: the morning must not cross a day."""

    def distance(tz: str) -> float:
        local = datetime.now(UTC).astimezone(ZoneInfo(tz))
        minutes = local.hour * 60 + local.minute
        return min(minutes, 24 * 60 - minutes)

    return max(("Asia/Jakarta", "Asia/Makassar", "Asia/Jayapura"), key=distance)


def nik_for(i: int) -> str:
    return f"3171{(i % 9) + 1:02d}{(i % 28) + 1:02d}0190{i:04d}"


def nearest_rank(values: list[float], p: float) -> float | None:
    if not values:
        return None
    values = sorted(values)
    return values[max(math.ceil(round(p / 100 * len(values), 9)), 1) - 1]


def at(value: str) -> datetime:
    return datetime.fromisoformat(value)


def seconds(a: str | None, b: str | None) -> float | None:
    if a is None or b is None:
        return None
    value = (datetime.fromisoformat(b) - datetime.fromisoformat(a)).total_seconds()
    return value if value >= 0 else None


class Api:
    def __init__(self, url: str) -> None:
        self.url = url

    def __call__(self, method: str, path: str, expect: int | tuple = 200, **kwargs):
        answer = requests.request(method, f"{self.url}{path}", timeout=15, **kwargs)
        expected = expect if isinstance(expect, tuple) else (expect,)
        assert answer.status_code in expected, (
            f"{method} {path}: {answer.status_code} {answer.text}"
        )
        return answer.json() if answer.content else None


def test_a_simulated_morning(mall_factory):
    tz = quiet_zone()
    mall = mall_factory(
        "postgres",
        extra_env={
            "MALL_TIMEZONE": tz,
            "RATE_LIMIT_PER_MINUTE": "100000",
            "RATE_LIMIT_PUBLIC_PER_MINUTE": "100000",
            "REDIS_PREFIX": f"mpp-test-{uuid.uuid4().hex[:8]}",
            "QUEUE_SWEEP_SECONDS": "1",
            "MAX_PRIORITY_STREAK": str(MAX_STREAK),
        },
    )
    mall.start_service("queue").wait_healthy()  # a second queue process
    api = Api(mall.url)
    admin = bearer(MALL_ADMIN_KEY)

    # -- the catalogue: three agencies, five services, six counters -------------------------
    everyday = [{"opens": "00:00", "closes": "23:59"}]
    plan = {
        "DUKCAPIL": [
            ("KTP", "A", 0, 120, {"slot_minutes": 5, "capacity": 20, "late_minutes": 60}),
            ("KK", "B", 0, 120, None),
        ],
        "IMIGRASI": [("PASPOR", "P", 350000, 120, None)],
        "SAMSAT": [("PKB", "S", 0, 120, None), ("BBN", "N", 0, 120, None)],
    }
    agencies, services, counters, officers = {}, {}, {}, {}
    for code, plugged in plan.items():
        agency = api("POST", "/v1/agencies", 201, headers=admin, json={"code": code, "name": code})
        agencies[code] = agency
        head = bearer(agency["admin_api_key"]["key"])
        for svc_code, prefix, fee, sla, booking in plugged:
            body = {
                "code": svc_code,
                "name": svc_code.title(),
                "fee_idr": fee,
                "sla_minutes": sla,
                "prefix": prefix,
            }
            if booking:
                body |= {"opening_hours": everyday, "booking": booking}
            services[svc_code] = api(
                "POST", f"/v1/agencies/{agency['id']}/services", 201, headers=head, json=body
            )
        for n in (1, 2):
            counters[f"{code}-{n}"] = api(
                "POST",
                f"/v1/agencies/{agency['id']}/counters",
                201,
                headers=head,
                json={
                    "name": f"Loket {n}",
                    "service_ids": [services[c]["id"] for c, *_ in plugged],
                },
            )
        officers[code] = bearer(
            api(
                "POST",
                f"/v1/agencies/{agency['id']}/api-keys",
                201,
                headers=head,
                json={"role": "officer"},
            )["key"]
        )
    dukcapil_admin = bearer(agencies["DUKCAPIL"]["admin_api_key"]["key"])
    display = bearer(
        api(
            "POST",
            f"/v1/agencies/{agencies['DUKCAPIL']['id']}/api-keys",
            201,
            headers=dukcapil_admin,
            json={"role": "display"},
        )["key"]
    )
    listed = api("GET", "/v1/services", params={"limit": 2})
    assert len(listed["items"]) == 2 and listed["next_cursor"]

    # -- walk-ins arrive (concurrent kiosks) --------------------------------------------------
    walk_in_codes = ["KTP"] * 50 + ["KK"] * 30 + ["PASPOR"] * 40 + ["PKB"] * 45 + ["BBN"] * 25
    assert len(walk_in_codes) == CITIZENS - BOOKED

    def arrive(i: int) -> dict:
        body = {"service_id": services[walk_in_codes[i]]["id"]}
        if i % 4 == 1:
            body["priority"] = PRIORITIES[i % 5]
        if i % 3 == 0:
            body["nik"] = nik_for(i)
        return api("POST", "/v1/tickets", 201, json=body)

    walk_ins = list(eventlet.GreenPool(10).imap(arrive, range(len(walk_in_codes))))
    numbers = Counter(t["number"] for t in walk_ins)
    assert max(numbers.values()) == 1, "every number once"

    # -- bookings: the current slot, checked in after the walk-ins arrived -------------------
    slots = api("GET", f"/v1/services/{services['KTP']['id']}/slots")
    now = datetime.now(UTC)
    current = [s for s in slots["items"] if datetime.fromisoformat(s["start"]) <= now][-1]
    # an hour ahead may be tomorrow: within about 90 minutes of midnight in every Indonesian
    # zone (15:00–17:00 UTC) today has no slot that late
    tomorrow = (now.astimezone(ZoneInfo(tz)).date() + timedelta(days=1)).isoformat()
    later = api("GET", f"/v1/services/{services['KTP']['id']}/slots", params={"date": tomorrow})
    future = next(
        s
        for s in slots["items"] + later["items"]
        if datetime.fromisoformat(s["start"]) > now + timedelta(hours=1)
    )
    bookings = [
        api(
            "POST",
            "/v1/bookings",
            201,
            json={
                "service_id": services["KTP"]["id"],
                "slot_start": current["start"],
                "nik": nik_for(900 + i),
            },
        )
        for i in range(BOOKED)
    ]
    early = api(
        "POST",
        "/v1/bookings",
        201,
        json={
            "service_id": services["KTP"]["id"],
            "slot_start": future["start"],
            "nik": nik_for(990),
        },
    )
    assert api("POST", f"/v1/bookings/{early['id']}/check-in", 409)["error"]["code"] == "TOO_EARLY"
    assert api("DELETE", f"/v1/bookings/{early['id']}")["status"] == "cancelled"
    booked_tickets = []
    for booking in bookings:
        checked = api("POST", f"/v1/bookings/{booking['id']}/check-in", 201)
        assert checked["booking"]["status"] == "checked_in"
        booked_tickets.append(checked["ticket"])
    booked_ids = {t["id"] for t in booked_tickets}
    slot_start = datetime.fromisoformat(current["start"])
    assert all(datetime.fromisoformat(t["booked_slot_start"]) == slot_start for t in booked_tickets)
    issued = walk_ins + booked_tickets
    assert len(issued) == CITIZENS

    # a virtual ticket shows its place and an estimate
    ktp_walk_ins = [t for t in walk_ins if t["service_id"] == services["KTP"]["id"]]
    last = ktp_walk_ins[-1]  # read by its holder, with the code the kiosk gave
    last_ktp = api("GET", f"/v1/tickets/{last['id']}", params={"code": last["access_code"]})
    assert last_ktp["position"] > 1 and last_ktp["estimated_wait_minutes"] > 0

    # -- mid-morning catalogue changes lose nothing -------------------------------------------
    api(
        "DELETE",
        f"/v1/agencies/{agencies['DUKCAPIL']['id']}/services/{services['KK']['id']}",
        headers=dukcapil_admin,
    )
    api("POST", "/v1/tickets", 404, json={"service_id": services["KK"]["id"]})
    samsat_admin = bearer(agencies["SAMSAT"]["admin_api_key"]["key"])
    closed = api(
        "PATCH",
        f"/v1/agencies/{agencies['SAMSAT']['id']}/counters/{counters['SAMSAT-2']['id']}",
        headers=samsat_admin,
        json={"is_open": False},
    )
    assert closed["is_open"] is False
    api(
        "POST",
        f"/v1/counters/{counters['SAMSAT-2']['id']}/call-next",
        409,
        headers=officers["SAMSAT"],
    )
    api(
        "PATCH",
        f"/v1/agencies/{agencies['SAMSAT']['id']}/counters/{counters['SAMSAT-2']['id']}",
        headers=samsat_admin,
        json={"is_open": True},
    )

    # -- six counters call at once -------------------------------------------------------------
    calls: dict[str, list[dict]] = defaultdict(list)
    transferred: list[dict] = []
    outcomes = Counter()

    def officer_at(name: str) -> None:
        code = name.split("-")[0]
        head = officers[code]
        counter_id = counters[name]["id"]
        idle = 0
        while idle < 3:
            answer = requests.post(
                f"{mall.url}/v1/counters/{counter_id}/call-next", headers=head, timeout=15
            )
            if answer.status_code == 404:
                idle += 1
                eventlet.sleep(0.3)  # a transferred citizen may still join this line
                continue
            assert answer.status_code == 200, answer.text
            idle = 0
            ticket = answer.json()
            calls[name].append(ticket)
            seq = int(ticket["number"].split("-")[1])
            path = f"/v1/tickets/{ticket['id']}"
            if ticket["id"] in booked_ids or seq % 17 not in (3, 11):
                if (
                    code == "DUKCAPIL"
                    and not transferred
                    and ticket["id"] not in booked_ids
                    and ticket["service_id"] == services["KTP"]["id"]
                ):
                    transferred.append(ticket)
                    api("POST", f"{path}/start", headers=head)
                    moved = api(
                        "POST",
                        f"{path}/transfer",
                        headers=head,
                        json={"to_service_id": services["PKB"]["id"]},
                    )
                    assert moved["status"] == "transferred"
                    outcomes["transferred"] += 1
                    continue
                api("POST", f"{path}/start", headers=head)
                api("POST", f"{path}/complete", headers=head)
                outcomes["done"] += 1
            elif seq % 17 == 3:
                assert (
                    api("POST", f"{path}/no-show", 409, headers=head)["error"]["details"]["reason"]
                    == "too_few_calls"
                )
                for _ in range(2):
                    api("POST", f"{path}/recall", headers=head)
                api("POST", f"{path}/no-show", headers=head, json={"reason": "not present"})
                outcomes["no_show"] += 1
            else:
                api("POST", f"{path}/cancel", headers=head, json={"reason": "left"})
                outcomes["cancelled"] += 1

    pool = eventlet.GreenPool(len(counters))
    for name in counters:
        pool.spawn(officer_at, name)
    pool.waitall()

    # -- no ticket called twice; booked first; the regular line never starved ------------------
    called_ids = [t["id"] for seq in calls.values() for t in seq]
    assert len(called_ids) == len(set(called_ids)), "a ticket was called twice"
    assert len(called_ids) == CITIZENS + len(transferred)
    assert len(transferred) == 1 and outcomes["no_show"] > 0 and outcomes["cancelled"] > 0

    finals = {t: api("GET", f"/v1/tickets/{t}", headers=admin) for t in called_ids}
    dukcapil_calls = sorted(
        (v for v in finals.values() if v["agency_id"] == agencies["DUKCAPIL"]["id"]),
        key=lambda v: at(v["called_at"]),
    )
    assert {v["id"] for v in dukcapil_calls[: BOOKED + 2]} >= booked_ids, "booked go first"

    for name, sequence in calls.items():
        run = 0
        serves = set(counters[name]["service_ids"])
        for ticket in sequence:
            view = finals[ticket["id"]]
            if view["id"] in booked_ids:
                continue
            if view["priority"] is None:
                run = 0
                continue
            run += 1
            if run > MAX_STREAK:
                # a regular still waiting well after this call (another counter taking one at
                # the same instant is a race, not starvation)
                waiting_regular = [
                    v
                    for v in finals.values()
                    if v["service_id"] in serves
                    and v["priority"] is None
                    and v["id"] not in booked_ids
                    and at(v["issued_at"]) < at(view["called_at"])
                    and at(v["called_at"]) > at(view["called_at"]) + timedelta(seconds=2)
                ]
                assert not waiting_regular, f"{name} starved the regular line"

    # -- every ticket ended in a legal state ------------------------------------------------------
    for view in finals.values():
        status = view["status"]
        assert status in ("done", "no_show", "cancelled", "transferred"), view
        assert view["called_at"] is not None and view["ended_at"] is not None
        if status == "done":
            moments = [
                at(view[k]) for k in ("issued_at", "called_at", "started_at", "completed_at")
            ]
            assert moments == sorted(moments)
        if status == "no_show":
            assert view["call_count"] >= 3 and view["started_at"] is None
        if status == "transferred":
            new = finals[view["transferred_to"]["id"]]
            assert new["journey_id"] == view["journey_id"] and new["transferred_from"] == view["id"]
            assert (
                new["queued_at"] == view["queued_at"] and new["service_id"] == services["PKB"]["id"]
            )
    assert sum(v["service_id"] == services["KK"]["id"] for v in finals.values()) == 30

    # -- the display board ----------------------------------------------------------------------
    board = api("GET", "/v1/display", headers=display, params={"recent": 5})
    assert board["agency_id"] == agencies["DUKCAPIL"]["id"] and len(board["counters"]) == 2
    assert len(board["recent_calls"]) == 5
    assert all(c["announcement"].startswith("Nomor antrean ") for c in board["recent_calls"])
    assert all("silakan menuju loket" in c["announcement"] for c in board["recent_calls"])

    # -- KPIs match a recomputation from the tickets ----------------------------------------
    wait_until(
        lambda: api("GET", "/v1/stats/queue", headers=admin)["overall"]["tickets"] == len(finals),
        timeout=10,
    )
    stats = api("GET", "/v1/stats/queue", headers=admin)
    day = datetime.now(UTC).astimezone(ZoneInfo(tz)).date().isoformat()
    assert stats["date"] == day and stats["timezone"] == tz

    def recompute(views: list[dict]) -> dict:
        waits = [w for v in views if (w := seconds(v["issued_at"], v["called_at"])) is not None]
        serves = [
            s for v in views if (s := seconds(v["started_at"], v["completed_at"])) is not None
        ]
        statuses = Counter(v["status"] for v in views)
        return {
            "tickets": len(views),
            "served": statuses["done"],
            "no_shows": statuses["no_show"],
            "cancelled": statuses["cancelled"],
            "transfers": statuses["transferred"],
            "sla_breaches": sum(v["sla"]["breached"] for v in views),
            "waiting": (
                len(waits),
                statistics.mean(waits),
                nearest_rank(waits, 50),
                nearest_rank(waits, 90),
            ),
            "serving": (
                len(serves),
                statistics.mean(serves),
                nearest_rank(serves, 50),
                nearest_rank(serves, 90),
            ),
        }

    def reported(kpi: dict) -> dict:
        out = {
            k: kpi[k]
            for k in ("tickets", "served", "no_shows", "cancelled", "transfers", "sla_breaches")
        }
        for part in ("waiting", "serving"):
            s = kpi[part]
            out[part] = (s["count"], s["mean_seconds"], s["median_seconds"], s["p90_seconds"])
        return out

    def same(mine: dict, theirs: dict) -> None:
        for key, value in mine.items():
            if isinstance(value, tuple):
                assert theirs[key][0] == value[0], key
                for got, want in zip(theirs[key][1:], value[1:], strict=True):
                    assert got == pytest.approx(want, abs=1e-3), key
            else:
                assert theirs[key] == value, key

    same(recompute(list(finals.values())), reported(stats["overall"]))
    for row in stats["by_agency"]:
        same(
            recompute([v for v in finals.values() if v["agency_id"] == row["agency_id"]]),
            reported(row),
        )
    for row in stats["by_counter"]:
        same(
            recompute([v for v in finals.values() if v["counter_id"] == row["counter_id"]]),
            reported(row),
        )
    assert stats["overall"]["served"] == outcomes["done"]

    # the NIKs given at kiosks and bookings appear in no log line of any process
    logs = mall.logs()
    assert all(nik_for(i) not in logs for i in [*range(0, CITIZENS, 3), *range(900, 910), 990])

    # an agency admin sees only its agency
    own = api("GET", "/v1/stats/queue", headers=dukcapil_admin)
    assert own["agency_id"] == agencies["DUKCAPIL"]["id"]
    api(
        "GET",
        "/v1/stats/queue",
        403,
        headers=dukcapil_admin,
        params={"agency": agencies["SAMSAT"]["id"]},
    )
