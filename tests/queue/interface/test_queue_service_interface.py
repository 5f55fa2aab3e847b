"""One real queue container with its real database (SQLite and PostgreSQL) on a fresh vhost,
driven through its entry points: RPCs, the payment/rating event handlers and the sweep timer."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from nameko.standalone.rpc import ClusterRpcProxy
from nameko.testing.services import entrypoint_hook

from mpp_chassis.migrate import upgrade
from mpp_contracts.envelope import make_envelope, read_envelope
from mpp_contracts.errors import Conflict, NotFound, ValidationFailed
from mpp_queue import usecases
from tests.queue.usecases.conftest import VALID_NIK, Floor
from tests.support.mall import free_port


@pytest.fixture
def queue(container_factory, amqp_uri, db_url_factory):
    from mpp_queue.service import QueueService

    url = db_url_factory("queue")
    upgrade("queue", url)
    config = {
        "AMQP_URI": amqp_uri,
        "DB_URL": url,
        "WEB_SERVER_ADDRESS": f"127.0.0.1:{free_port()}",
        "MALL_ID": "mpp-test",
        "MALL_TIMEZONE": "Asia/Makassar",
        "NIK_HASH_KEY": "interface-key",
        "MAX_PRIORITY_STREAK": 1,
        "OUTBOX_POLL_SECONDS": 0.2,
    }
    container = container_factory(QueueService, config)
    container.start()

    def at_once(method: str, *args, times: int = 6) -> list:
        """``times`` calls at once through RabbitMQ, each answered by its own worker (a hook
        answers with the first worker of its entry point to finish, whichever it is)."""
        with ClusterRpcProxy(container.config) as cluster:
            pending = [getattr(cluster.queue, method).call_async(*args) for _ in range(times)]
            return [reply.result() for reply in pending]

    def call(entrypoint: str, *args):
        with entrypoint_hook(container, entrypoint) as hook:
            return hook(*args)

    floor = Floor(url, usecases.Settings(mall_timezone="Asia/Makassar", nik_hash_key="k"))
    call.floor = floor
    call.at_once = at_once
    yield call
    floor.engine.dispose()


def test_floor_through_the_entry_points(queue):
    agency = queue("register_agency", {"code": "BPN", "name": "Kantor Pertanahan"})
    svc = queue(
        "plug_service",
        agency["id"],
        {
            "code": "SERTIFIKAT",
            "name": "Sertifikat",
            "fee_idr": 50000,
            "sla_minutes": 60,
            "prefix": "C",
        },
    )
    other = queue(
        "plug_service",
        agency["id"],
        {"code": "UKUR", "name": "Pengukuran", "fee_idr": 0, "sla_minutes": 60, "prefix": "U"},
    )
    with pytest.raises(ValidationFailed):
        queue("plug_service", agency["id"], {"code": "x"})
    counter = queue("add_counter", agency["id"], {"name": "7", "service_ids": [svc["id"]]})
    assert queue("list_services", agency["id"], None, None)["items"][0]["code"] == "SERTIFIKAT"
    regular = queue("take_ticket", {"service_id": svc["id"], "nik": VALID_NIK})
    priority = queue("take_ticket", {"service_id": svc["id"], "priority": "children"})
    assert regular["number"] == "C-001" and regular["nik_last4"] == "0003"
    with pytest.raises(ValidationFailed):
        queue("take_ticket", {"service_id": svc["id"], "priority": "vip"})
    officer = {"role": "officer", "agency_id": agency["id"], "key_id": "officer-key"}
    assert queue("call_next", counter["id"], officer)["id"] == priority["id"]
    queue("ticket_action", priority["id"], "start", None, officer)
    done = queue("ticket_action", priority["id"], "complete", None, officer)
    assert done["status"] == "done"
    called = queue("call_next", counter["id"], officer)
    moved = queue(
        "ticket_action", called["id"], "transfer", {"to_service_id": other["id"]}, officer
    )
    assert moved["transferred_to"]["number"] == "U-001"
    with pytest.raises(Conflict):
        queue("ticket_action", called["id"], "cancel", None, officer)

    # facts from other services show on the ticket
    payment = make_envelope(
        "payment_requested",
        {
            "payment_id": "pay-1",
            "ticket_id": done["id"],
            "agency_id": agency["id"],
            "service_id": svc["id"],
            "amount_idr": 50000,
            "status": "pending",
            "provider": "simulator",
        },
        source="payment",
        mall="mpp-test",
    )
    queue("handle_payment_requested", [read_envelope(payment)])
    queue("handle_payment_requested", [read_envelope(payment)])  # a redelivery changes nothing
    assert queue("get_ticket", done["id"], None, officer)["payment"] == {
        "id": "pay-1",
        "status": "pending",
        "href": "/v1/payments/pay-1",
    }

    board = queue("display_snapshot", agency["id"], 5)
    assert [c["number"] for c in board["recent_calls"]] == ["C-001", "C-002"]
    stats = queue("queue_stats", agency["id"], None)
    assert stats["overall"]["served"] == 1 and stats["overall"]["transfers"] == 1
    assert stats["timezone"] == "Asia/Makassar"


def test_a_keyed_take_ticket_issues_one_ticket_when_its_retries_arrive_at_once(queue):
    """Several workers take with one request key at the same moment: whichever inserts first
    issues the ticket; the others find it, or are refused by the key's unique index and answer
    with it. Every caller gets the same ticket, and the line holds one."""
    import sqlalchemy as sa

    agency = queue("register_agency", {"code": "SAM", "name": "Samsat"})
    svc = queue(
        "plug_service",
        agency["id"],
        {"code": "PKB", "name": "Pajak", "fee_idr": 0, "sla_minutes": 60, "prefix": "P"},
    )
    key = "c" * 64
    answers = queue.at_once("take_ticket", {"service_id": svc["id"]}, key)
    assert len({a["id"] for a in answers}) == 1
    assert queue("take_ticket", {"service_id": svc["id"]}, key)["id"] == answers[0]["id"]
    with queue.floor.engine.connect() as conn:
        held = conn.execute(
            sa.text("SELECT count(*) FROM tickets WHERE service_id = :s"), {"s": svc["id"]}
        ).scalar_one()
    assert held == 1
    for bad in ("", "k" * 65, 7):
        with pytest.raises(ValidationFailed):
            queue("take_ticket", {"service_id": svc["id"]}, bad)


def test_a_keyed_booking_books_once_when_its_retries_arrive_at_once(queue):
    """The same booking request (one request key) several times at once, on a slot with room for
    one: the first books; the others are refused by the key's unique index or by the full slot
    and answer with the first's booking. A later repeat gets it too; another request (another
    key) for the same citizen is "already booked" as before."""
    import sqlalchemy as sa

    agency = queue("register_agency", {"code": "IMI", "name": "Imigrasi"})
    svc = queue(
        "plug_service",
        agency["id"],
        {
            "code": "PASPOR",
            "name": "Paspor",
            "fee_idr": 0,
            "sla_minutes": 60,
            "prefix": "M",
            "opening_hours": [{"opens": "08:00", "closes": "15:00"}],
            "booking": {"slot_minutes": 30, "capacity": 1, "late_minutes": 0},
        },
    )
    tomorrow = datetime.now(ZoneInfo("Asia/Makassar")).date() + timedelta(days=1)
    slot = queue("list_slots", svc["id"], tomorrow.isoformat())["items"][0]
    body = {"service_id": svc["id"], "slot_start": slot["start"], "nik": VALID_NIK}
    key = "b" * 64
    answers = queue.at_once("create_booking", body, key)
    assert len({a["id"] for a in answers}) == 1
    assert queue("create_booking", body, key)["id"] == answers[0]["id"]
    with pytest.raises(Conflict) as again:
        queue("create_booking", body, "a" * 64)
    assert again.value.code == "ALREADY_BOOKED"
    with queue.floor.engine.connect() as conn:
        held = conn.execute(
            sa.text("SELECT count(*) FROM bookings WHERE service_id = :s"), {"s": svc["id"]}
        ).scalar_one()
    assert held == 1
    for bad in ("", "k" * 65, 7):
        with pytest.raises(ValidationFailed):
            queue("create_booking", body, bad)


def test_the_sweep_timer_flags_sla_breaches_and_booking_no_shows(queue):
    floor = queue.floor
    agency = queue("register_agency", {"code": "PLN", "name": "PLN"})
    svc = queue(
        "plug_service",
        agency["id"],
        {
            "code": "SAMBUNG",
            "name": "Sambung baru",
            "fee_idr": 0,
            "sla_minutes": 5,
            "prefix": "E",
            "opening_hours": [{"opens": "00:00", "closes": "23:59"}],
            "booking": {"slot_minutes": 30, "capacity": 1, "late_minutes": 0},
        },
    )
    # a ticket issued 6 minutes ago and a booking whose window closed a minute ago
    floor.now = datetime.now(UTC) - timedelta(minutes=6)
    late = floor("take_ticket", {"service_id": svc["id"]}, settings=True)
    slots = floor("list_slots", svc["id"], None, settings=True)["items"]
    past = [s for s in slots if datetime.fromisoformat(s["start"]) <= floor.now][-1]
    floor.now = datetime.fromisoformat(past["start"]) - timedelta(minutes=1)
    booking = floor(
        "create_booking",
        {"service_id": svc["id"], "slot_start": past["start"], "nik": VALID_NIK},
        settings=True,
    )
    queue("sweep")
    mall_admin = {"role": "mall_admin", "agency_id": None, "key_id": "k-admin"}
    assert queue("get_ticket", late["id"], None, mall_admin)["sla"]["breached"] is True
    assert queue("get_booking", booking["id"])["status"] == "no_show"
    breaches = floor.events("sla_breached")
    assert [b["payload"]["ticket_id"] for b in breaches] == [late["id"]]
    queue("sweep")
    assert len(floor.events("sla_breached")) == 1 and len(floor.events("booking_no_show")) == 1


def test_read_paths_refuse_days_and_cursors_out_of_bounds_and_unknown_agencies(queue):
    """Issue 15: a crafted cursor (``[null,null]``) or a day like 0001-01-01 was a 500; an RPC
    caller other than the gateway gets the same 422 the gateway gives."""
    agency = queue("register_agency", {"code": "BPN", "name": "Kantor Pertanahan"})
    assert queue("get_agency", agency["id"]) == agency
    with pytest.raises(NotFound):
        queue("get_agency", "no-such-agency")
    crafted = "W251bGwsbnVsbF0"  # base64 of [null,null]
    for entrypoint, *args in [
        ("list_slots", "some-service", "0001-01-01"),
        ("queue_stats", None, "9999-12-31"),
        ("queue_stats", "a\x00b", None),
        ("list_agencies", crafted, 5),
        ("list_services", None, crafted, 5),
        ("list_counters", agency["id"], crafted, 5),
        ("list_counters", agency["id"], None, 101),
    ]:
        with pytest.raises(ValidationFailed):
            queue(entrypoint, *args)


def test_counters_page_by_name(queue):
    agency = queue("register_agency", {"code": "BPN", "name": "Kantor Pertanahan"})
    svc = queue(
        "plug_service",
        agency["id"],
        {"code": "SVC", "name": "Layanan", "fee_idr": 0, "sla_minutes": 30, "prefix": "A"},
    )
    for name in ("Loket 3", "Loket 1", "Loket 2"):
        queue("add_counter", agency["id"], {"name": name, "service_ids": [svc["id"]]})
    first = queue("list_counters", agency["id"], None, 2)
    second = queue("list_counters", agency["id"], first["next_cursor"], 2)
    assert [c["name"] for c in first["items"] + second["items"]] == [
        "Loket 1",
        "Loket 2",
        "Loket 3",
    ]
    assert second["next_cursor"] is None


def test_an_officer_closes_their_counter_through_the_entry_point(queue):
    agency = queue("register_agency", {"code": "KUA", "name": "Kantor Urusan Agama"})
    svc = queue(
        "plug_service",
        agency["id"],
        {"code": "NIKAH", "name": "Nikah", "fee_idr": 0, "sla_minutes": 60, "prefix": "N"},
    )
    counter = queue("add_counter", agency["id"], {"name": "2", "service_ids": [svc["id"]]})
    officer = {"role": "officer", "agency_id": agency["id"], "key_id": "k"}
    queue("take_ticket", {"service_id": svc["id"]})
    called = queue("call_next", counter["id"], officer)
    with pytest.raises(Conflict) as busy:  # the contract's error type, not a RemoteError
        queue("set_counter_open", counter["id"], False, officer)
    assert busy.value.code == "COUNTER_BUSY" and busy.value.details["tickets"] == [called["number"]]
    for action in ("start", "complete"):
        queue("ticket_action", called["id"], action, {}, officer)
    assert queue("set_counter_open", counter["id"], False, officer)["is_open"] is False
    line = queue("counter_line", counter["id"], officer, {})
    assert line["counter"]["is_open"] is False and line["no_show_after_calls"] == 3
