"""Issue 16, items 2 and 3, through the payment container's entry points on a real database
(SQLite and PostgreSQL): the invoice exists at once and its provider charge is a retried,
idempotent step outside the database transaction; every charge attempt is its own record, so a
stale notice of an old attempt never changes the live one, money paid twice is an overpayment held
in suspense (shown, refundable), and reconciliation checks every attempt."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from alembic import command
from prometheus_client import REGISTRY
from sqlalchemy import create_engine, func, insert, select, text, update

from mpp_chassis.migrate import alembic_config, upgrade
from mpp_contracts.errors import Conflict
from mpp_payment import charging
from mpp_payment.adapters.tables import charge_attempts, journal_lines, payments, simulator_book
from mpp_payment.domain import ledger, qris, signatures
from tests.payment.interface.conftest import SECRET, completed_payload, envelope

pytestmark = pytest.mark.integration

ADMIN = {"role": "agency_admin", "agency_id": "agency-1", "key_id": "k-1"}


@pytest.fixture
def on_provider(provider_service):
    # the tests run the charge sweep themselves
    return lambda name: provider_service(name, CHARGE_SWEEP_SECONDS=3600)


def complete(payment) -> str:
    """The queue says a ticket was completed; the ticket's id."""
    ticket_id = str(uuid.uuid4())
    event = envelope("ticket_completed", completed_payload(ticket_id, "agency-1"))
    payment.call("handle_ticket_completed", [event])
    return ticket_id


def attempts_of(payment, payment_id: str) -> list[dict]:
    with payment.db.connect() as conn:
        rows = conn.execute(
            select(charge_attempts)
            .where(charge_attempts.c.payment_id == payment_id)
            .order_by(charge_attempts.c.attempt)
        )
        return [dict(r) for r in rows.mappings()]


def make_due(payment) -> None:
    """The retry delay of every waiting charge has passed."""
    with payment.db.begin() as conn:
        conn.execute(
            update(charge_attempts).values(next_try_at=datetime.now(UTC) - timedelta(seconds=1))
        )


def pay(payment, order: str, status: str = "paid", amount: int = 50000) -> dict:
    """The simulated provider's book records ``status`` for one attempt's order, then its
    signed notice for that order arrives."""
    if status == "paid":
        with payment.db.begin() as conn:
            conn.execute(
                update(simulator_book)
                .where(simulator_book.c.order_id == order)
                .values(status="paid")
            )
    body = json.dumps(
        {"payment_id": order, "status": status, "amount_idr": amount, "provider_ref": order[-6:]}
    )
    signature = signatures.simulator_signature(body.encode(), SECRET)
    return payment.call(
        "handle_notification", "simulator", {"x-simulator-signature": signature}, body
    )


# -- item 2: the provider call is outside the transaction ------------------------------------


@pytest.mark.parametrize("provider", ["midtrans", "xendit"])
def test_a_provider_outage_keeps_the_invoice_and_only_delays_its_charge(
    on_provider, fake, provider
):
    payment = on_provider(provider)
    fake.down = True
    ticket_id = complete(payment)  # the handler neither fails nor waits for the provider
    view = payment.call("get_ticket_payment", ticket_id)
    assert view["status"] == "pending" and view["charge_status"] == "preparing"
    assert view["qris"] is None and view["checkout_url"] is None
    assert len(payment.events("payment_requested", view["id"])) == 1
    [attempt] = attempts_of(payment, view["id"])
    assert attempt["status"] == "creating" and attempt["tries"] >= 1 and attempt["last_error"]

    # the sweep while the provider is still down: the invoice waits, it is never expired
    with payment.db.begin() as conn:
        conn.execute(update(payments).values(expires_at=datetime.now(UTC) - timedelta(seconds=1)))
    make_due(payment)
    payment.call("create_charges")
    payment.call("expire_overdue")
    assert payment.call("get_payment", view["id"])["status"] == "pending"
    assert REGISTRY.get_sample_value("mpp_payment_charges_waiting") == 1  # what ops sees

    fake.down = False
    make_due(payment)
    payment.call("create_charges")
    ready = payment.call("get_payment", view["id"])
    assert ready["charge_status"] == "ready" and ready["status"] == "pending"
    assert datetime.fromisoformat(ready["expires_at"]) > datetime.now(UTC)  # a fresh deadline
    if provider == "midtrans":
        assert qris.parse_qris(ready["qris"]["payload"]).amount_idr == 50000
    else:
        assert ready["checkout_url"].startswith("https://checkout.xendit.co/")
    make_due(payment)
    payment.call("create_charges")  # nothing left to do
    assert fake.charges == 1
    assert REGISTRY.get_sample_value("mpp_payment_charges_waiting") == 0


def test_the_provider_is_called_with_no_transaction_open(on_provider, fake, db_url_factory):
    """While the provider answers, nobody holds a lock on the invoice or its attempt: the claim
    committed before the call, the answer is stored after it (PostgreSQL's pg_locks)."""
    if db_url_factory.backend != "postgres":
        pytest.skip("pg_locks is PostgreSQL's")
    payment = on_provider("midtrans")
    held: list[list] = []

    def look() -> None:
        with payment.db.connect() as conn:
            held.append(
                conn.execute(
                    text(
                        "SELECT c.relname, l.mode FROM pg_locks l "
                        "JOIN pg_class c ON c.oid = l.relation "
                        "WHERE c.relname IN ('payments', 'charge_attempts') "
                        "AND l.pid <> pg_backend_pid()"
                    )
                ).all()
            )

    fake.on_charge = look
    invoice = payment.call("get_ticket_payment", complete(payment))
    assert held == [[]] and invoice["charge_status"] == "ready"


@pytest.mark.parametrize("provider", ["midtrans", "xendit", "simulator"])
def test_a_worker_killed_after_the_provider_answered_makes_no_second_charge(
    on_provider, fake, monkeypatch, provider
):
    payment = on_provider(provider)

    def killed(*args, **kwargs):
        raise RuntimeError("worker killed before it stored the provider's answer")

    with monkeypatch.context() as patch:
        patch.setattr(charging, "store_charge", killed)
        ticket_id = complete(payment)
    invoice = payment.call("get_ticket_payment", ticket_id)
    assert invoice["charge_status"] == "preparing"
    if provider == "simulator":  # nothing to pay yet: a clear 409, not a 500 or a 400
        with pytest.raises(Conflict) as early:
            payment.call("simulate_payment", ADMIN, invoice["id"])
        assert early.value.code == "CHARGE_NOT_READY"
    make_due(payment)
    payment.call("create_charges")  # the retry, with the attempt's idempotency key
    [attempt] = attempts_of(payment, invoice["id"])
    assert attempt["status"] == "live" and attempt["provider_ref"]
    assert payment.call("get_payment", invoice["id"])["charge_status"] == "ready"
    if provider == "simulator":
        with payment.db.connect() as conn:
            book = conn.execute(select(simulator_book)).mappings().all()
        assert [(b["order_id"], b["idempotency_key"]) for b in book] == [
            (f"{invoice['id']}-1", attempt["id"])
        ]
    else:
        assert fake.charges == 1  # the provider answered the retry with the first charge
        if provider == "midtrans":
            first = fake.midtrans[f"{invoice['id']}-1"]["transaction_id"]
            assert attempt["provider_ref"] == first


def test_an_attempt_is_stored_claimed_and_left_to_the_sweep_only_once_its_lease_lapses(
    on_provider, fake, monkeypatch
):
    """Issue 20: the handler stores the attempt already claimed (one try, leased), so the charge
    right after its commit needs no claim of its own. A worker that dies before that charge
    leaves the attempt to the sweep, which does not race a live worker: it waits for the lease,
    then charges once."""
    payment = on_provider("midtrans")

    def died(*args, **kwargs):
        raise RuntimeError("worker gone between the handler's commit and the charge")

    with monkeypatch.context() as patch:
        patch.setattr(charging, "run_charge", died)
        ticket_id = complete(payment)
    invoice = payment.call("get_ticket_payment", ticket_id)
    [attempt] = attempts_of(payment, invoice["id"])
    assert attempt["status"] == "creating" and attempt["tries"] == 1
    lease = attempt["next_try_at"].replace(tzinfo=attempt["next_try_at"].tzinfo or UTC)
    assert lease > datetime.now(UTC) + timedelta(seconds=charging.LEASE_SECONDS - 30)
    payment.call("create_charges")  # within the lease: not due
    assert fake.charges == 0 and invoice["charge_status"] == "preparing"
    make_due(payment)  # the lease lapsed
    payment.call("create_charges")
    assert fake.charges == 1
    assert payment.call("get_payment", invoice["id"])["charge_status"] == "ready"
    [attempt] = attempts_of(payment, invoice["id"])
    assert attempt["status"] == "live" and attempt["tries"] == 2


# -- item 3: each charge attempt is its own record --------------------------------------------


def test_a_stale_expire_of_an_old_attempt_leaves_the_live_one_open(on_provider):
    payment = on_provider("simulator")
    invoice = payment.call("get_ticket_payment", complete(payment))
    switched = payment.call("choose_method", invoice["id"], {"method": "virtual_account"})
    assert switched["va_number"] and switched["charge_status"] == "ready"
    stale = pay(payment, f"{invoice['id']}-1", status="expired")
    assert stale["status"] == "pending"
    view = payment.call("get_payment", invoice["id"])
    assert view["status"] == "pending" and view["va_number"] == switched["va_number"]
    assert payment.events("payment_expired", invoice["id"]) == []
    assert [a["status"] for a in attempts_of(payment, invoice["id"])] == ["expired", "live"]
    assert pay(payment, f"{invoice['id']}-2")["status"] == "paid"


def test_money_paid_twice_is_an_overpayment_shown_and_refundable(on_provider):
    payment = on_provider("simulator")
    invoice = payment.call("get_ticket_payment", complete(payment))
    payment.call("choose_method", invoice["id"], {"method": "virtual_account"})
    assert pay(payment, f"{invoice['id']}-2")["status"] == "paid"
    second = pay(payment, f"{invoice['id']}-1")  # the old QR, paid as well
    assert second["result"] == "flagged" and second["flag"] == "overpayment"
    assert pay(payment, f"{invoice['id']}-1")["result"] == "duplicate"
    flags = [e["payload"]["flag"] for e in payment.events("payment_flagged", invoice["id"])]
    assert flags == ["overpayment"]
    view = payment.call("get_payment", invoice["id"])
    assert view["status"] == "paid" and view["overpaid_idr"] == 50000
    assert [a["status"] for a in attempts_of(payment, invoice["id"])] == ["paid", "paid"]

    report = payment.call("settlement_report", ADMIN, "agency-1", None, "json")
    assert (report["gross_idr"], report["net_idr"], report["ledger"]["balanced"]) == (
        50000,
        50000,
        True,
    )
    assert report["overpayments_idr"] == 50000 and report["suspense"]["net_idr"] == 50000
    [line] = report["overpayments"]
    assert line["order_id"] == f"{invoice['id']}-1" and line["outstanding_idr"] == 50000
    check = payment.call("reconciliation", ADMIN, "agency-1", None)
    assert check["checked"] == 2 and check["mismatches"] == []
    assert [o["outstanding_idr"] for o in check["overpayments"]] == [50000]

    # the refunds route returns the overpayment first, then (only then) the payment itself
    back = payment.call("refund", ADMIN, invoice["id"], {"amount_idr": 50000}, "over-1")
    assert back["overpayment"] is True and back["payment_status"] == "paid"
    with payment.db.connect() as conn:
        suspense = conn.execute(
            select(func.sum(journal_lines.c.credit_idr - journal_lines.c.debit_idr)).where(
                journal_lines.c.account == ledger.overpayment_suspense("agency-1")
            )
        ).scalar_one()
    assert suspense == 0
    assert payment.call("get_payment", invoice["id"])["overpaid_idr"] == 0
    report = payment.call("settlement_report", ADMIN, "agency-1", None, "json")
    assert report["refunds_idr"] == 0 and report["ledger"]["balanced"]
    assert report["overpayments"][0]["outstanding_idr"] == 0
    full = payment.call("refund", ADMIN, invoice["id"], {"amount_idr": 50000}, "pay-1")
    assert full["overpayment"] is False and full["payment_status"] == "refunded"


def test_money_on_a_superseded_attempt_settles_an_unpaid_invoice_once(on_provider):
    """The citizen paid the old QR after switching to a VA: that money is the invoice's (asking
    again would make the double payment); the VA, paid as well, is then the overpayment."""
    payment = on_provider("simulator")
    invoice = payment.call("get_ticket_payment", complete(payment))
    payment.call("choose_method", invoice["id"], {"method": "virtual_account"})
    first = pay(payment, f"{invoice['id']}-1")
    assert first["result"] == "applied" and first["status"] == "paid"
    view = payment.call("get_payment", invoice["id"])
    assert view["method"] == "qris" and view["receipt"]["amount_idr"] == 50000
    assert [a["status"] for a in attempts_of(payment, invoice["id"])] == ["paid", "superseded"]
    assert pay(payment, f"{invoice['id']}-2")["flag"] == "overpayment"
    assert len(payment.events("payment_succeeded", invoice["id"])) == 1
    assert payment.call("get_payment", invoice["id"])["overpaid_idr"] == 50000


def test_reconciliation_checks_every_attempt(on_provider):
    payment = on_provider("simulator")
    invoice = payment.call("get_ticket_payment", complete(payment))
    payment.call("choose_method", invoice["id"], {"method": "virtual_account"})
    with payment.db.begin() as conn:  # the old QR was paid; its webhook never came
        conn.execute(
            update(simulator_book)
            .where(simulator_book.c.order_id == f"{invoice['id']}-1")
            .values(status="paid")
        )
    check = payment.call("reconciliation", ADMIN, "agency-1", None)
    assert check["checked"] == 2
    [mismatch] = check["mismatches"]
    assert mismatch["order_id"] == f"{invoice['id']}-1" and mismatch["attempt"] == 1
    assert mismatch["kind"] == "status_differs" and mismatch["provider"]["status"] == "paid"


def test_migration_0008_gives_existing_invoices_their_attempts(db_url_factory):
    url = db_url_factory("payment")
    config = alembic_config("payment", url)
    command.upgrade(config, "0007")
    now = datetime.now(UTC)
    pid, legacy = str(uuid.uuid4()), str(uuid.uuid4())
    engine = create_engine(url)
    base = {
        "agency_id": "agency-1",
        "service_id": "svc-1",
        "amount_idr": 50000,
        "provider": "simulator",
        "expires_at": now,
        "refunded_idr": 0,
        "created_at": now,
        "updated_at": now,
    }
    with engine.begin() as conn:
        conn.execute(
            insert(payments).values(
                id=pid,
                ticket_id="t-1",
                status="paid",
                method="virtual_account",
                method_attempt=2,
                provider_ref="SIM-1",
                va_number="8808000000000001",
                paid_amount_idr=50000,
                paid_at=now,
                **base,
            )
        )
        conn.execute(
            insert(payments).values(
                id=legacy,
                ticket_id="t-2",
                status="pending",
                method="qris",
                method_attempt=1,
                qris_payload="000201",
                **base,
            )
        )
        for order, status in ((pid, "paid"), (legacy, "pending")):
            conn.execute(
                insert(simulator_book).values(
                    order_id=order,
                    status=status,
                    amount_idr=50000,
                    refunded_idr=0,
                    expires_at=now,
                    updated_at=now,
                )
            )
    upgrade("payment", url)
    with engine.connect() as conn:
        rows = conn.execute(
            select(
                charge_attempts.c.payment_id,
                charge_attempts.c.attempt,
                charge_attempts.c.status,
                charge_attempts.c.method,
                charge_attempts.c.order_id,
            ).order_by(charge_attempts.c.payment_id, charge_attempts.c.attempt)
        ).all()
        book = conn.execute(select(simulator_book.c.order_id)).scalars().all()
        paid_attempt = conn.execute(
            select(payments.c.paid_attempt).where(payments.c.id == pid)
        ).scalar_one()
    expected = {
        (pid, 1, "superseded", None, f"{pid}-1"),
        (pid, 2, "paid", "virtual_account", f"{pid}-2"),
        (legacy, 1, "live", "qris", f"{legacy}-1"),
    }
    assert set(map(tuple, rows)) == expected
    assert sorted(book) == sorted([f"{pid}-2", f"{legacy}-1"]) and paid_attempt == 2

    command.downgrade(config, "0007")  # and back: the simulator's book by payment id again
    with engine.connect() as conn:
        book = conn.execute(text("SELECT order_id FROM simulator_transactions")).scalars().all()
    assert sorted(book) == sorted([pid, legacy])
    upgrade("payment", url)
    engine.dispose()
