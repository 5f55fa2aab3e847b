"""``mpp`` against a real mall (four service processes, RabbitMQ, SQLite): apply, diff, prune,
get, keys rotate, demo, load, dlq and outbox, all through CliRunner as a user would type them."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import requests
import yaml
from click.testing import CliRunner
from kombu import Connection, Producer, Queue

from mpp_chassis.messaging import dead_letter_declarations
from mpp_cli.main import cli
from tests.support.mall import MALL_ADMIN_KEY

pytestmark = pytest.mark.e2e

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "mall.yaml"

SMALL = {
    "agencies": [
        {
            "code": "DUKCAPIL",
            "name": "Dinas Kependudukan dan Pencatatan Sipil",
            "services": [
                {
                    "code": "KTP-EL",
                    "name": "Cetak KTP-el",
                    "fee_idr": 0,
                    "sla_minutes": 60,
                    "prefix": "A",
                    "requirements": ["Kartu Keluarga"],
                    "daily_quota": 400,
                    "opening_hours": [{"opens": "08:00", "closes": "15:00"}],
                    "booking": {"slot_minutes": 30, "capacity": 10},
                },
                {
                    "code": "KK",
                    "name": "Kartu Keluarga",
                    "fee_idr": 0,
                    "sla_minutes": 45,
                    "prefix": "B",
                },
            ],
            "counters": [{"name": "Loket 1", "services": ["KTP-EL", "KK"]}],
            "keys": [
                {"role": "officer", "label": "Loket 1"},
                {"role": "display", "label": "Papan"},
            ],
        },
        {
            "code": "SAMSAT",
            "name": "Samsat",
            "services": [
                {
                    "code": "PENGESAHAN-R4",
                    "name": "Pengesahan STNK roda 4",
                    "fee_idr": 50000,
                    "sla_minutes": 45,
                    "prefix": "H",
                }
            ],
            "counters": [{"name": "Loket Samsat", "services": ["PENGESAHAN-R4"]}],
        },
    ]
}


@pytest.fixture
def mall(mall_factory):
    return mall_factory("sqlite")


@pytest.fixture
def mpp(mall, monkeypatch):
    monkeypatch.setenv("MALL_URL", mall.url)
    monkeypatch.setenv("MPP_KEY", MALL_ADMIN_KEY)
    monkeypatch.setenv("MPP_CONFIG", "/nonexistent/profiles.yaml")
    runner = CliRunner()

    def invoke(*args: str, code: int = 0):
        result = runner.invoke(cli, list(args), catch_exceptions=False)
        assert result.exit_code == code, result.output
        return result

    return invoke


def write(tmp_path: Path, data: dict) -> str:
    path = tmp_path / "mall.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False))
    return str(path)


def as_json(result) -> object:
    return json.loads(result.stdout)


def test_apply_is_declarative_idempotent_and_prunes_only_when_asked(mpp, mall, tmp_path):
    path = write(tmp_path, SMALL)

    # an empty mall drifts from the file; a dry run changes nothing
    assert "+ agency DUKCAPIL" in mpp("diff", "-f", path, code=1).output
    dry = as_json(mpp("apply", "-f", path, "--dry-run", "-o", "json"))
    assert dry["keys"] == [] and len(dry["changes"]) == 2 + 3 + 2 + 2
    assert as_json(mpp("get", "agencies", "-o", "json")) == []

    # apply: every key is shown once, with its secret, and works
    applied = as_json(mpp("apply", "-f", path, "-o", "json"))
    roles = sorted((k["agency"], k["role"], k["label"]) for k in applied["keys"])
    assert roles == [
        ("DUKCAPIL", "agency_admin", "first admin key"),
        ("DUKCAPIL", "display", "Papan"),
        ("DUKCAPIL", "officer", "Loket 1"),
        ("SAMSAT", "agency_admin", "first admin key"),
    ]
    officer = next(k["key"] for k in applied["keys"] if k["role"] == "officer")
    counters = as_json(mpp("get", "counters", "--agency", "DUKCAPIL", "-o", "json"))
    assert [c["services"] for c in counters] == ["KTP-EL, KK"]
    service = next(s for s in as_json(mpp("get", "services", "-o", "json")) if s["code"] == "KK")
    ticket = requests.post(f"{mall.url}/v1/tickets", json={"service_id": service["id"]}).json()
    called = requests.post(
        f"{mall.url}/v1/counters/{counters[0]['id']}/call-next",
        headers={"Authorization": f"Bearer {officer}"},
    )
    assert called.status_code == 200 and called.json()["id"] == ticket["id"]

    # twice: nothing changes, no key is issued again, diff exits 0
    again = as_json(mpp("apply", "-f", path, "-o", "json"))
    assert again == {"changes": [], "keys": []}
    assert "no changes" in mpp("diff", "-f", path).output

    # the file changes: a fee, a counter's services; a service and a key leave the file
    changed = json.loads(json.dumps(SMALL))
    dukcapil = changed["agencies"][0]
    dukcapil["services"][0]["fee_idr"] = 10000
    dukcapil["services"] = dukcapil["services"][:1]
    dukcapil["counters"][0]["services"] = ["KTP-EL"]
    dukcapil["keys"] = dukcapil["keys"][:1]
    path = write(tmp_path, changed)
    shown = as_json(mpp("diff", "-f", path, "-o", "json", code=1))
    assert {(c["op"], c["kind"], c["name"]) for c in shown} == {
        ("~", "service", "DUKCAPIL/KTP-EL"),
        ("~", "counter", "DUKCAPIL/Loket 1"),
    }
    assert "fee_idr: 0 → 10000" in shown[0]["details"]
    # without --prune nothing is deleted
    mpp("apply", "-f", path)
    services = as_json(mpp("get", "services", "--agency", "DUKCAPIL", "-o", "json"))
    assert {s["code"]: s["fee_idr"] for s in services} == {"KTP-EL": 10000, "KK": 0}
    assert "no changes" in mpp("diff", "-f", path).output
    # with --prune: the service is unplugged, the display key revoked, the admin key kept
    pruned = as_json(mpp("diff", "-f", path, "--prune", "-o", "json", code=1))
    assert {(c["op"], c["name"]) for c in pruned} == {
        ("-", "DUKCAPIL/KK"),
        ("-", "DUKCAPIL/display/Papan"),
    }
    mpp("apply", "-f", path, "--prune")
    assert "no changes" in mpp("diff", "-f", path, "--prune").output
    services = as_json(mpp("get", "services", "--agency", "DUKCAPIL", "-o", "json"))
    assert [s["code"] for s in services] == ["KTP-EL"]
    keys = as_json(mpp("keys", "list", "--agency", "DUKCAPIL", "-o", "json"))
    assert sorted(k["role"] for k in keys) == ["agency_admin", "officer"]


def test_keys_rotate_keeps_both_keys_for_the_overlap_then_revokes_the_old(mpp, mall, tmp_path):
    applied = as_json(mpp("apply", "-f", write(tmp_path, SMALL), "-o", "json"))
    old = next(k for k in applied["keys"] if k["role"] == "officer")
    rotated = as_json(
        mpp("keys", "rotate", old["id"], "--agency", "DUKCAPIL", "--overlap", "2s", "-o", "json")
    )
    assert rotated["revoke_command"] == f"mpp keys revoke {old['id']} --agency DUKCAPIL"
    new = rotated["new"]
    assert (new["role"], new["label"]) == ("officer", "Loket 1") and new["key"] != old["key"]
    counter = as_json(mpp("get", "counters", "--agency", "DUKCAPIL", "-o", "json"))[0]

    def status(key: str) -> int:
        url = f"{mall.url}/v1/counters/{counter['id']}/call-next"
        return requests.post(url, headers={"Authorization": f"Bearer {key}"}).status_code

    # both work during the overlap (nobody waiting: 404 NO_TICKET_WAITING is past auth)
    assert status(old["key"]) not in (401, 403) and status(new["key"]) not in (401, 403)
    # the same identity (role, label): the file stays satisfied, nothing to add
    assert "no changes" in mpp("diff", "-f", str(tmp_path / "mall.yaml")).output
    # --wait: revokes the old one when the overlap ends
    began = time.monotonic()
    mpp("keys", "rotate", new["id"], "--agency", "DUKCAPIL", "--overlap", "1s", "--wait")
    assert time.monotonic() - began >= 1
    deadline = time.monotonic() + 10  # AUTH_CACHE_SECONDS
    while status(new["key"]) != 401:
        assert time.monotonic() < deadline, "the rotated key still works"
        time.sleep(0.5)
    assert status(old["key"]) not in (401, 403)  # the first one was only printed, not revoked
    mpp("keys", "revoke", old["id"], "--agency", "DUKCAPIL")
    live = as_json(mpp("keys", "list", "--agency", "DUKCAPIL", "-o", "json"))
    assert sorted((k["role"], k["label"]) for k in live) == [
        ("agency_admin", "first admin key"),
        ("display", "Papan"),
        ("officer", "Loket 1"),
    ]


def test_demo_plays_a_morning_and_load_runs_an_open_loop(mpp, mall):
    result = mpp("demo", "--citizens", "15")
    assert "seeded" in result.output and "The morning" in result.output
    agencies = as_json(mpp("get", "agencies", "-o", "json"))
    assert len(agencies) == 12
    calls = as_json(mpp("get", "tickets", "-o", "json"))
    assert calls and all(c["announcement"] for c in calls)
    assert all("ticket_id" not in c for c in calls)  # a board's list opens no ticket
    admin = {"Authorization": f"Bearer {MALL_ADMIN_KEY}"}
    extra = requests.post(
        f"{mall.url}/v1/agencies", headers=admin, json={"code": "CLITEST", "name": "Uji"}
    ).json()
    service = requests.post(
        f"{mall.url}/v1/agencies/{extra['id']}/services",
        headers=admin,
        json={"code": "UJI", "name": "Uji", "fee_idr": 0, "sla_minutes": 30, "prefix": "U"},
    ).json()
    taken = requests.post(f"{mall.url}/v1/tickets", json={"service_id": service["id"]})
    assert taken.status_code == 201, taken.text
    ticket = as_json(mpp("get", "tickets", taken.json()["id"], "-o", "json"))[0]
    assert ticket["status"] == "waiting" and ticket["access_code"] is None  # staff's view
    # ratings went through: the summary counts them (the demo rated most completed tickets)
    summary = requests.get(f"{mall.url}/v1/ratings/summary").json()
    assert summary["count"] >= 1
    assert isinstance(as_json(mpp("get", "complaints", "-o", "json")), list)
    # the example mall is what demo seeded: applying it again changes nothing
    assert "no changes" in mpp("diff", "-f", str(EXAMPLE)).output

    load = as_json(
        mpp("load", "--rate", "5", "--duration", "2", "--service", "KTP-EL", "-o", "json")
    )
    assert load["tool"] == "python-open-loop" and load["requests"] == 10
    assert load["errors"] == 0 and load["non_2xx"] == 0 and load["p99_ms"] > 0


def test_dlq_and_outbox_wrap_the_chassis_tools(mpp, mall, monkeypatch):
    from sqlalchemy import create_engine, text

    monkeypatch.setenv("AMQP_URI", mall.amqp_uri)
    assert as_json(mpp("dlq", "list", "-o", "json")) == []
    mpp("dlq", "show", "nope", code=1)
    mpp("dlq", "replay", "nope", code=1)

    # a dead letter as RabbitMQ leaves one (headers name the queue it died in), then replayed
    with Connection(mall.amqp_uri) as conn:
        channel = conn.channel()
        exchange, queue = dead_letter_declarations()
        queue(channel).declare()
        target = Queue("cli-test-handler", durable=True)
        target(channel).declare()
        Producer(channel).publish(
            json.dumps({"id": "ev-1", "type": "ticket_completed"}),
            exchange=exchange,
            routing_key="ticket_completed",
            headers={"x-first-death-queue": target.name, "x-first-death-reason": "delivery_limit"},
            message_id="ev-1",
            content_type="application/json",
        )
    letters = as_json(mpp("dlq", "list", "-o", "json"))
    assert [(x["id"], x["type"], x["queue"], x["reason"]) for x in letters] == [
        ("ev-1", "ticket_completed", "cli-test-handler", "delivery_limit")
    ]
    assert json.loads(mpp("dlq", "show", "ev-1").stdout)["body"]["id"] == "ev-1"
    assert "replayed ev-1 -> cli-test-handler" in mpp("dlq", "replay", "ev-1").output
    assert as_json(mpp("dlq", "list", "-o", "json")) == []
    with Connection(mall.amqp_uri) as conn:
        replayed = Queue("cli-test-handler", durable=True)(conn.channel()).get(no_ack=True)
        assert replayed is not None and json.loads(replayed.body)["id"] == "ev-1"

    # park an event the way the relay does (sent, last_error 'unroutable'), then hand it back
    url = mall.db_urls["queue"]
    monkeypatch.setenv("QUEUE_DB_URL", url)
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO outbox (event_id, event_type, source, body, created_at, sent_at, "
                "attempts, last_error) VALUES ('e-1', 'sla_breached', 'queue', '{}', "
                "CURRENT_TIMESTAMP, CURRENT_TIMESTAMP, 1, 'unroutable')"
            )
        )
    parked = as_json(mpp("outbox", "parked", "queue", "-o", "json"))
    assert [(p["event_id"], p["type"]) for p in parked] == [("e-1", "sla_breached")]
    assert "1 parked event(s) of queue" in mpp("outbox", "republish", "queue").output
    assert as_json(mpp("outbox", "parked", "queue", "-o", "json")) == []

    # the gateway has a database but no outbox: a clear usage error, not a traceback
    monkeypatch.setenv("GATEWAY_DB_URL", mall.db_urls["gateway"])
    refused = mpp("outbox", "parked", "gateway", code=2)
    assert "gateway has no outbox" in refused.output
