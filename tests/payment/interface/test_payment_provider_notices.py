"""Provider notices verified the way the providers advise, against a local fake provider (a real
HTTP server on 127.0.0.1): the signature or callback token first, then the state from the
provider's own status API, never from the notice's fields. A replayed notice is stored once.
And the simulator, a test double, pays only where it is the provider, for an agency's admin.

Every test runs on SQLite and on PostgreSQL (``db_url_factory``)."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from sqlalchemy import func, select, text

from mpp_contracts.errors import BadRequest, Forbidden, NotFound, Unauthorized
from mpp_payment.adapters.tables import journal_lines, notifications
from mpp_payment.domain import signatures
from tests.payment.interface.conftest import SECRET
from tests.support import fake_provider

AGENCY_ADMIN = {"role": "agency_admin", "agency_id": "agency-1", "key_id": "k-1"}


@pytest.fixture
def on_provider(provider_service, fake):
    """A payment service whose PAYMENT_PROVIDER is ``name``, its API at the fake provider."""
    # the simulator's webhook answers 404 at the fake: delivery stops there
    return lambda name: provider_service(name, SIMULATOR_WEBHOOK_URL=f"{fake.url}/webhook")


def stored(payment, payment_id: str) -> list:
    with payment.db.connect() as conn:
        return conn.execute(
            select(notifications.c.outcome, notifications.c.replays)
            .where(notifications.c.payment_id == payment_id)
            .order_by(notifications.c.id)
        ).all()


def rows(payment, payment_id: str) -> int:
    with payment.db.connect() as conn:
        return conn.execute(
            text("SELECT count(*) FROM provider_notifications WHERE payment_id = :p"),
            {"p": payment_id},
        ).scalar_one()


def midtrans(payment, body: bytes) -> dict:
    return payment.call("handle_notification", "midtrans", {}, body.decode())


def test_an_edited_pending_notice_does_not_mark_the_invoice_paid(on_provider, fake):
    """Found 3: one genuine signed ``pending`` (201) notice, its status word edited to
    ``settlement``. The signature still verifies (it does not cover the word); the invoice must
    stay pending, and nothing of the edited notice is stored."""
    payment = on_provider("midtrans")
    invoice = payment.invoice()
    order = f"{invoice['id']}-1"
    genuine = fake.midtrans_notice(order)
    assert json.loads(genuine)["status_code"] == "201"
    assert midtrans(payment, genuine)["result"] == "noted"
    edited = fake.midtrans_notice(order, transaction_status="settlement")
    refused = None
    try:
        midtrans(payment, edited)
    except BadRequest as exc:
        refused = exc
    assert payment.call("get_payment", invoice["id"])["status"] == "pending"
    assert payment.events("payment_succeeded", invoice["id"]) == []
    assert refused is not None and refused.code == "INCONSISTENT_NOTIFICATION"
    assert stored(payment, invoice["id"]) == [("noted_pending", 0)]


def test_midtrans_state_comes_from_get_status_and_replays_are_stored_once(on_provider, fake):
    payment = on_provider("midtrans")
    invoice = payment.invoice()
    order = f"{invoice['id']}-1"
    pending = fake.midtrans_notice(order)
    assert midtrans(payment, pending)["result"] == "noted"
    # a correctly signed "settlement" that Midtrans' own status API does not confirm: the API
    # says pending, so nothing is paid (the notice is the same fact as the first, a replay)
    fake.midtrans[order]["transaction_status"] = "settlement"
    early = fake.midtrans_notice(order)
    fake.midtrans[order]["transaction_status"] = "pending"
    assert midtrans(payment, early)["result"] == "duplicate"
    assert payment.call("get_payment", invoice["id"])["status"] == "pending"
    assert ("GET", f"/v2/{order}/status") in fake.calls

    fake.settle(order)
    # the late-arriving pending notice is verified against the API too: the money is there
    applied = midtrans(payment, pending)
    assert applied["result"] == "applied" and applied["status"] == "paid"
    settled = fake.midtrans_notice(order)
    for _ in range(20):
        assert midtrans(payment, settled)["result"] == "duplicate"
    for _ in range(5):
        assert midtrans(payment, early)["result"] == "duplicate"
    assert rows(payment, invoice["id"]) == 2
    assert stored(payment, invoice["id"]) == [("noted_pending", 1), ("applied", 25)]
    assert len(payment.events("payment_succeeded", invoice["id"])) == 1
    with payment.db.connect() as conn:
        debit, credit = conn.execute(
            select(func.sum(journal_lines.c.debit_idr), func.sum(journal_lines.c.credit_idr))
        ).one()
    assert debit == credit == 50000
    assert payment.call("get_payment", invoice["id"])["receipt"]["amount_idr"] == 50000


def test_midtrans_refusals_store_nothing(on_provider, fake):
    payment = on_provider("midtrans")
    invoice = payment.invoice()
    order = f"{invoice['id']}-1"
    fake.settle(order)
    genuine = json.loads(fake.midtrans_notice(order))
    forged = {**genuine, "gross_amount": "5000.00"}  # not what was signed
    with pytest.raises(Unauthorized):
        midtrans(payment, json.dumps(forged).encode())
    unknown = f"{invoice['id']}-9"  # signed, but Midtrans never heard of it
    body = {**genuine, "order_id": unknown}
    body["signature_key"] = signatures.midtrans_signature(
        unknown, "200", body["gross_amount"], fake_provider.MIDTRANS_KEY
    )
    with pytest.raises(BadRequest) as info:
        midtrans(payment, json.dumps(body).encode())
    assert info.value.code == "UNKNOWN_ORDER"
    assert stored(payment, invoice["id"]) == []
    assert payment.call("get_payment", invoice["id"])["status"] == "pending"


def test_xendit_callback_token_then_get_invoice(on_provider, fake):
    payment = on_provider("xendit")
    invoice = payment.invoice()
    order = f"{invoice['id']}-1"
    token = {"x-callback-token": fake_provider.XENDIT_TOKEN}

    def callback(body: bytes, headers=token):
        return payment.call("handle_notification", "xendit", headers, body.decode())

    claimed = fake.xendit_callback(order, status="PAID", paid_amount=50000)
    with pytest.raises(Unauthorized):
        callback(claimed, {"x-callback-token": "guessed"})
    assert not [c for c in fake.calls if c[0] == "GET"]  # refused before asking anything
    # the callback says PAID; Xendit's own invoice still says PENDING: nothing is paid
    assert callback(claimed)["result"] == "noted"
    assert payment.call("get_payment", invoice["id"])["status"] == "pending"
    other = payment.invoice()
    mixed = fake.xendit_callback(order, external_id=f"{other['id']}-1")
    with pytest.raises(BadRequest) as info:
        callback(mixed)
    assert info.value.code == "INCONSISTENT_NOTIFICATION"

    fake.settle(order)
    paid = fake.xendit_callback(order)
    assert callback(paid)["status"] == "paid"
    for _ in range(10):
        assert callback(paid)["result"] == "duplicate"
    assert stored(payment, invoice["id"]) == [("noted_pending", 0), ("applied", 10)]
    assert stored(payment, other["id"]) == []


def test_a_replayed_simulator_notice_is_stored_once(on_provider):
    payment = on_provider("simulator")
    invoice = payment.invoice()
    assert payment.notify(invoice["id"])["result"] == "applied"
    for _ in range(30):
        assert payment.notify(invoice["id"])["result"] == "duplicate"
    assert rows(payment, invoice["id"]) == 1
    assert stored(payment, invoice["id"]) == [("applied", 30)]


def test_the_simulator_pays_only_for_its_agency_admin(on_provider):
    """Found 1, in the service: no actor, a citizen-less role or another agency is refused."""
    payment = on_provider("simulator")
    invoice = payment.invoice(agency_id="agency-1")
    other_admin = {**AGENCY_ADMIN, "agency_id": "agency-2"}
    officer = {**AGENCY_ADMIN, "role": "officer"}
    for actor in (None, other_admin, officer):
        with pytest.raises(Forbidden):
            payment.call("simulate_payment", actor, invoice["id"])
    assert payment.call("get_payment", invoice["id"])["status"] == "pending"
    sent = payment.call("simulate_payment", AGENCY_ADMIN, invoice["id"])
    assert sent["notification"] == "sent"
    mall_admin = {"role": "mall_admin", "agency_id": None, "key_id": "bootstrap"}
    second = payment.invoice(agency_id="agency-3")
    assert payment.call("simulate_payment", mall_admin, second["id"])["notification"] == "sent"


def test_the_simulator_is_absent_where_another_provider_is_configured(on_provider):
    payment = on_provider("midtrans")
    invoice = payment.invoice()
    mall_admin = {"role": "mall_admin", "agency_id": None, "key_id": "bootstrap"}
    with pytest.raises(NotFound) as info:
        payment.call("simulate_payment", mall_admin, invoice["id"])
    assert info.value.code == "SIMULATOR_DISABLED"
    body = json.dumps({"payment_id": invoice["id"], "status": "paid", "amount_idr": 50000})
    signature = signatures.simulator_signature(body.encode(), SECRET)
    with pytest.raises(NotFound):
        payment.call("handle_notification", "simulator", {"x-simulator-signature": signature}, body)
    assert payment.call("get_payment", invoice["id"])["status"] == "pending"


class _Gateway(BaseHTTPRequestHandler):
    """The mall's webhook endpoint, keeping connections open (HTTP/1.1), noting each notice's
    client address: one address per TCP connection."""

    protocol_version = "HTTP/1.1"
    seen: list = []

    def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
        self.rfile.read(int(self.headers["Content-Length"]))
        self.seen.append(self.client_address)
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


def test_the_simulators_webhooks_reuse_one_connection(provider_service):
    """Issue 20: each simulated payment's notice was a new TCP connection to the gateway (its
    setup paid by both processes); they now share a kept-alive one, as a real provider's do."""
    _Gateway.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Gateway)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/webhook"
        payment = provider_service("simulator", SIMULATOR_WEBHOOK_URL=url)
        for _ in range(3):
            invoice = payment.invoice()
            assert payment.call("simulate_payment", AGENCY_ADMIN, invoice["id"])["webhook"] == url
            deadline = time.monotonic() + 10
            while len(_Gateway.seen) < payment_count(payment) and time.monotonic() < deadline:
                time.sleep(0.02)
        assert len(_Gateway.seen) == 3
        assert len(set(_Gateway.seen)) == 1, _Gateway.seen
    finally:
        server.shutdown()
        server.server_close()


def payment_count(payment) -> int:
    with payment.db.connect() as conn:
        return conn.execute(text("SELECT count(*) FROM payments")).scalar_one()
