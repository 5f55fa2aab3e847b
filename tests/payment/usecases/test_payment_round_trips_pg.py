"""How many statements payment's part of a journey sends PostgreSQL (issue 20, item 4): the
invoice opened, its charge made, the citizen's page reading it, the simulator paying and its
notice applied. Each statement is a round trip; their number is a figure the code must keep."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from mpp_chassis.migrate import upgrade
from mpp_payment import charging, notices, usecases
from mpp_payment.adapters.tables import (
    charge_attempts,
    journal_lines,
    metadata,
    notifications,
    simulator_book,
)
from mpp_payment.usecases import Settings
from tests.payment.usecases.conftest import ADMIN, completed_ticket, plugged
from tests.support.statements import recording, statements_of
from tests.support.usecases import UseCases

pytestmark = pytest.mark.postgres


@pytest.fixture
def till(pg_url_factory):
    url = pg_url_factory("mpp_payment_round_trips")
    upgrade("payment", url)
    desk = UseCases(url, metadata, "payment")
    desk.settings = Settings(simulator_secret="round-trips")
    desk(usecases.upsert_service, plugged(fee_idr=50000))
    yield desk
    desk.dispose()


def journey(till) -> dict[str, list[str]]:
    """Payment's statements per step of one journey (the steps' results are checked too)."""
    ticket = completed_ticket()
    sent, kept = {}, {}

    def step(name, use_case, *args):
        sent[name] = statements_of(till.engine, lambda: kept.update({name: till(use_case, *args)}))
        return kept[name]

    new = step("open_invoice", charging.open_invoice, till.settings, ticket, 50000)
    step("charge_now", charging.charge_now, till.settings, new)
    invoice = step("get_ticket_payment", usecases.get_ticket_payment, ticket["ticket_id"])
    assert invoice["charge_status"] == "ready" and invoice["qris"]
    body, signature = step(
        "simulator_notification",
        notices.simulator_notification,
        till.settings,
        ADMIN,
        invoice["id"],
    )
    headers = {"x-simulator-signature": signature}
    applied = step(
        "handle_notification",
        notices.handle_notification,
        till.settings,
        "simulator",
        headers,
        body.decode(),
    )
    assert applied["result"] == "applied" and applied["status"] == "paid"
    return sent


def test_a_journey_costs_payment_13_statements_where_it_cost_31(till):
    """Before: open_invoice 6 (a read, the invoice in a savepoint, the attempt, its event),
    charge_now 7 (the claim, two rereads, the simulator's read and insert, two updates),
    the page's read 1, the simulator 4, the notice 13. Now 2 + 2 + 1 + 2 + 7: the invoice is
    ``ON CONFLICT DO NOTHING``, events ride on a change (data-modifying CTE), the attempt is
    stored claimed (no claim, no transaction of its own before the provider is asked), the live
    attempt and its invoice are one statement, the simulator reads the
    invoice with its attempt, the notice checks it is new with the attempt's read, settles the
    attempts in one update and is stored without a savepoint, with its journal lines in its
    own insert (``WITH journal AS (INSERT …) INSERT INTO provider_notifications``): 6."""
    journey(till)  # warm the caches
    sent = journey(till)
    counts = {name: len(statements) for name, statements in sent.items()}
    assert counts == {
        "open_invoice": 2,
        "charge_now": 2,
        "get_ticket_payment": 1,
        "simulator_notification": 2,
        "handle_notification": 6,
    }, sent
    assert sent["open_invoice"][1].startswith("WITH change AS (INSERT INTO charge_attempts")
    assert sent["charge_now"][1].startswith("WITH live AS (UPDATE charge_attempts")
    assert not any(s.startswith("UPDATE charge_attempts SET tries") for s in sent["charge_now"])
    applied = sent["handle_notification"]
    assert sum(s.startswith("WITH change AS (UPDATE charge_attempts") for s in applied) == 1
    assert sum(s.startswith("WITH journal AS (INSERT INTO journal_lines") for s in applied) == 1
    assert not any(s.startswith("INSERT INTO journal_lines") for s in applied)
    assert not any("SAVEPOINT" in s for statements in sent.values() for s in statements)
    # the events and the books are what they were
    assert len(till.events("payment_requested")) == 2
    assert len(till.events("payment_succeeded")) == 2
    with till.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(simulator_book)).scalar() == 2
        debit, credit = conn.execute(
            select(func.sum(journal_lines.c.debit_idr), func.sum(journal_lines.c.credit_idr))
        ).one()
        assert debit == credit > 0  # double entry: the journal balances
        statuses = conn.execute(select(charge_attempts.c.status)).scalars().all()
        outcomes = conn.execute(select(notifications.c.outcome)).scalars().all()
        lines = conn.execute(select(func.count()).select_from(journal_lines)).scalar()
    assert statuses == ["paid", "paid"]
    assert outcomes == ["applied", "applied"]
    assert lines > 0 and lines % 2 == 0  # each paid notice booked its (same) entries


def test_the_journeys_statements_by_key_run_prepared(till):
    """Each of these was planned at every call (~50-150 µs each, more than it ran): the live
    attempt and its invoice, the notice's attempt read, the settling update, the notice with
    its journal lines and the simulator's own book. They are planned once per connection."""
    journey(till)
    with recording(till.engine) as sent:
        journey(till)
    for start in (
        "WITH live AS (UPDATE charge_attempts",
        "WITH journal AS (INSERT INTO journal_lines",
        "UPDATE payments SET status=",
        "UPDATE simulator_transactions SET status=",
    ):
        matching = [s for s in sent.statements if s.startswith(start)]
        assert matching and set(matching) <= set(sent.prepared), (start, sent.prepared)
    attempt_reads = [s for s in sent.statements if "AS notice_seen" in s]
    assert attempt_reads and set(attempt_reads) <= set(sent.prepared), sent.prepared


def test_a_redelivered_completion_and_a_replayed_notice_change_nothing(till):
    ticket = completed_ticket()
    new = till(charging.open_invoice, till.settings, ticket, 50000)
    till(charging.charge_now, till.settings, new)
    assert till(charging.open_invoice, till.settings, ticket, 50000) is None
    invoice = till(usecases.get_ticket_payment, ticket["ticket_id"])
    body, signature = till(notices.simulator_notification, till.settings, ADMIN, invoice["id"])
    headers = {"x-simulator-signature": signature}
    for _ in range(2):
        last = till(notices.handle_notification, till.settings, "simulator", headers, body.decode())
    assert last["result"] == "duplicate"
    with till.engine.connect() as conn:  # the replay is counted on the one stored notice
        assert conn.execute(select(notifications.c.replays)).scalars().all() == [1]
    assert len(till.events("payment_requested")) == 1
    assert len(till.events("payment_succeeded")) == 1
