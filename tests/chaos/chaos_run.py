"""A morning of citizens and officers under a list of faults, and the checks against the databases
that nothing was lost or done twice (shared by the fault tests of tests/chaos)."""

from __future__ import annotations

import json
import os
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

import sqlalchemy as sa

from bench.floor import Floor
from mpp_chassis import dlq
from tests.chaos import chaos_citizens as sim
from tests.support import infra
from tests.support.infra import wait_until
from tests.support.mall import SERVICES, Mall


@dataclass(frozen=True)
class Profile:
    citizens: int
    rounds: int
    fault_gap: float  # seconds of load between two faults
    deadline: float  # seconds for the whole load to finish
    outage: float  # seconds a stopped Redis or a failing provider stays away


PROFILES = {
    "short": Profile(citizens=16, rounds=1, fault_gap=3.0, deadline=150, outage=6.0),
    "long": Profile(citizens=120, rounds=3, fault_gap=6.0, deadline=900, outage=60.0),
}
PROFILE = PROFILES[os.environ.get("CHAOS_PROFILE", "short")]

# every replica sweeps (and so reconciles the quota counts) every 2 s, not every 15 s
CHAOS_ENV = {"QUEUE_SWEEP_SECONDS": "2"}

Fault = tuple[str, Callable[[], float]]  # name, inject (returns the seconds it took or a count)


def query(url: str, sql: str, **params) -> list:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return conn.execute(sa.text(sql), params).all()
    finally:
        engine.dispose()


def events(url: str, event_type: str) -> list[dict]:
    rows = query(url, "SELECT body FROM outbox WHERE event_type = :t", t=event_type)
    return [json.loads(row.body)["payload"] for row in rows]


def run_journeys(
    floor: Floor, profile: Profile, faults: list[Fault], pay=None, fault_seconds: float = 0
) -> tuple[sim.Ledger, list]:
    """Citizens arrive over the window in which the faults are injected one after the other,
    ``profile.rounds`` times (``fault_seconds``: about how long one lasts); returns what the
    clients saw and the faults injected."""
    ledger = sim.Ledger()
    deadline = time.monotonic() + profile.deadline
    stop = threading.Event()
    officers = [
        threading.Thread(target=sim.officer, args=(floor, ledger, c, stop, deadline))
        for cs in floor.counters.values()
        for c in cs
    ]
    for thread in officers:
        thread.start()
    window = profile.rounds * len(faults) * (profile.fault_gap + fault_seconds)
    citizens = []

    def arrivals() -> None:
        for i in range(profile.citizens):
            code = "PAID" if i % 2 else "FREE"
            thread = threading.Thread(
                target=sim.citizen, args=(floor, ledger, i, code, deadline), kwargs={"pay": pay}
            )
            thread.start()
            citizens.append(thread)
            time.sleep(window / profile.citizens)

    arriving = threading.Thread(target=arrivals)
    arriving.start()
    outages = []
    for _ in range(profile.rounds):
        for name, inject in faults:
            time.sleep(profile.fault_gap)
            outages.append((name, round(inject(), 1)))
            print(f"chaos: {outages[-1]} with {len(ledger.tickets)} tickets taken", flush=True)
    arriving.join()
    for thread in citizens:
        thread.join(timeout=max(1, deadline - time.monotonic()))
    print(f"chaos: citizens finished, {len(ledger.ratings)} rated", flush=True)
    sim.sweep(floor, ledger, deadline)
    stop.set()
    for thread in officers:
        thread.join(timeout=30)
    print(f"\nchaos: faults {outages}; {len(ledger.tickets)} tickets, retries {ledger.retries}")
    return ledger, outages


def check_nothing_lost(
    mall: Mall,
    floor: Floor,
    ledger: sim.Ledger,
    profile: Profile,
    *,
    vhost: str,
    amqp_uri: str,
    api: str = infra.RABBIT_API,
) -> list[str]:
    """Every invariant, checked against the databases and the broker; the violations."""
    urls = mall.db_urls
    # every outbox event was delivered: nothing waits for a consumer that exists. (An event type
    # nobody subscribes to stays in the outbox as 'unroutable' by the chassis' design; it was
    # not lost, so it is listed, not failed.)
    pending = "SELECT source, event_type, last_error FROM outbox WHERE sent_at IS NULL"
    unrouted = {}
    problems: list[str] = []

    def check(ok: bool, message: str) -> None:
        if not ok:
            problems.append(message)

    def eventually(predicate, message: str, timeout: float = 60) -> None:
        try:
            wait_until(predicate, timeout=timeout, interval=0.5, message=message)
        except AssertionError as exc:
            problems.append(str(exc))

    for name in (s for s in SERVICES if s != "gateway"):  # the gateway emits no events

        def stuck(name=name) -> Counter:
            bound = sim.bound_event_types(vhost, api)
            return Counter(
                (r.event_type, r.last_error)
                for r in query(urls[name], pending)
                if (r.source, r.event_type) in bound
            )

        try:
            wait_until(lambda: not stuck(), timeout=60, interval=0.5, message=f"{name} outbox")
        except AssertionError:
            problems.append(f"{name} outbox still holds {dict(stuck())}")
        unrouted[name] = sorted({r.event_type for r in query(urls[name], pending)})
    print(f"chaos: events with no consumer, left unsent by design: {unrouted}")

    # every taken ticket exists once, in a legal state; the ones served are done
    rows = query(
        urls["queue"], "SELECT id, status FROM tickets WHERE agency_id = :a", a=floor.agency_id
    )
    by_id = Counter(row.id for row in rows)
    status = {row.id: row.status for row in rows}
    check(all(n == 1 for n in by_id.values()), "a ticket id appears twice")
    check(set(ledger.tickets) <= set(by_id), "a ticket a citizen holds is missing")
    orphans = set(by_id) - set(ledger.tickets)
    check(len(orphans) <= ledger.take_lost, f"tickets nobody asked for: {orphans}")
    check(set(status.values()) <= {"waiting", "called", "serving", *sim.FINAL}, "illegal state")
    check(not ledger.stuck_keys, f"idempotency keys stuck in progress: {ledger.stuck_keys}")
    check(ledger.take_lost == 0, f"{ledger.take_lost} take-ticket(s) got no ticket")
    not_done = {t: status.get(t) for t in ledger.tickets if status.get(t) != "done"}
    check(not not_done, f"tickets not served: {not_done}")

    # quota counts equal the walk-in tickets issued (a place claimed by a take-ticket whose
    # process or database went away is given back by the queue's sweep, without a human)
    def quota_drift() -> dict:
        counts = query(
            urls["queue"],
            "SELECT c.service_id, c.issued, (SELECT count(*) FROM tickets t"
            " WHERE t.service_id = c.service_id AND t.day = c.day AND t.booking_id IS NULL"
            " AND t.transferred_from IS NULL) AS walk_ins FROM service_day_counts c"
            " WHERE c.service_id = ANY(:ids)",
            ids=list(floor.services.values()),
        )
        return {r.service_id: (r.issued, r.walk_ins) for r in counts if r.issued != r.walk_ins}

    eventually(lambda: not quota_drift(), "quota counts equal issued tickets", timeout=30)
    check(not quota_drift(), f"quota counts (issued, tickets) that drifted: {quota_drift()}")

    # every paid invoice is paid once (one invoice per ticket, one payment_succeeded each)
    invoices = query(
        urls["payment"],
        "SELECT id, ticket_id, status, amount_idr FROM payments WHERE agency_id = :a",
        a=floor.agency_id,
    )
    invoice_of = {row.ticket_id: row for row in invoices}
    check(len(invoice_of) == len(invoices), "two invoices for one ticket")
    paid_tickets = {t for t, info in ledger.tickets.items() if info["paid_service"]}
    check(ledger.paid == paid_tickets, f"citizens could not pay: {paid_tickets - ledger.paid}")
    check(all(invoice_of[t].status == "paid" for t in ledger.paid), "a paid invoice is not paid")
    succeeded = Counter(p["payment_id"] for p in events(urls["payment"], "payment_succeeded"))
    doubled = {t: succeeded[invoice_of[t].id] for t in ledger.paid if t in invoice_of}
    check(all(n == 1 for n in doubled.values()), f"payment_succeeded counts: {doubled}")
    eventually(
        lambda: all(
            r.payment_status == "paid"
            for r in query(
                urls["queue"],
                "SELECT payment_status FROM tickets WHERE agency_id = :a AND fee_idr > 0"
                " AND status = 'done'",
                a=floor.agency_id,
            )
        ),
        "the queue saw every payment",
        timeout=30,
    )

    # the ledger balances per agency and day, and posts each paid invoice once, in full
    days = query(
        urls["payment"],
        "SELECT agency_id, CAST(occurred_at AS date) AS day, sum(debit_idr) AS debit,"
        " sum(credit_idr) AS credit FROM journal_lines GROUP BY agency_id, day",
    )
    unbalanced = [(r.agency_id, str(r.day), r.debit, r.credit) for r in days if r.debit != r.credit]
    check(not unbalanced, f"journal days that do not balance: {unbalanced}")
    posted = query(
        urls["payment"],
        "SELECT reference, count(DISTINCT entry_id) AS entries, sum(debit_idr) AS debit"
        " FROM journal_lines WHERE agency_id = :a AND kind = 'payment' GROUP BY reference",
        a=floor.agency_id,
    )
    entries = {r.reference: (r.entries, r.debit) for r in posted}
    paid_invoices = {row.id: row.amount_idr for row in invoices if row.status == "paid"}
    wrong = {
        i: entries.get(i) for i, amount in paid_invoices.items() if entries.get(i) != (1, amount)
    }
    check(not wrong, f"paid invoices not posted once in full (entries, debit): {wrong}")

    # every completed ticket (free, or paid) has exactly one rating token
    invitations = query(
        urls["rating"],
        "SELECT ticket_id, token FROM invitations WHERE agency_id = :a",
        a=floor.agency_id,
    )
    tokens = {row.ticket_id: row.token for row in invitations}
    check(all(tokens.get(t) for t in ledger.tickets), "a completed ticket has no rating token")
    invited = Counter(p["ticket_id"] for p in events(urls["rating"], "rating_invited"))
    check(all(invited[t] == 1 for t in ledger.tickets), f"rating_invited counts: {invited}")

    # aggregates equal recomputation from the raw ratings (and what the citizens submitted)
    raw = query(
        urls["rating"],
        "SELECT ticket_id, stars FROM ratings WHERE agency_id = :a",
        a=floor.agency_id,
    )
    stored = {row.ticket_id: row.stars for row in raw}
    check(
        all(stored.get(t) == stars for t, stars in ledger.ratings.items()),
        "a rating the citizen submitted is missing or changed",
    )
    unrated = set(ledger.tickets) - set(ledger.ratings)
    check(not unrated, f"{len(unrated)} citizen(s) could not rate")
    summary = sim.send(  # retried as a client would: a replacement gateway may be starting
        ledger,
        "GET",
        f"{floor.url}/v1/ratings/summary",
        deadline=time.monotonic() + 30,
        params={"agency": floor.agency_id},
    ).json()
    check(summary["count"] == len(raw), f"summary count {summary['count']} != {len(raw)} rows")
    mean = sum(stored.values()) / max(1, len(stored))
    check(
        abs(float(summary["average_stars"] or 0) - mean) < 0.006,
        f"summary average {summary['average_stars']} != recomputed {mean:.4f}",
    )

    # nothing was dead-lettered: every failed delivery was retried to success, no human replayed
    letters = dlq.list_letters(amqp_uri)
    check(not letters, f"dead letters: {[letter.get('reason') for letter in letters]}")

    # no NIK in any log line, of any process, killed ones included
    logs = mall.logs()
    leaked = [sim.nik_for(i) for i in range(profile.citizens) if sim.nik_for(i) in logs]
    check(not leaked, f"NIKs in logs: {len(leaked)}")
    for name in SERVICES:  # a process of each (the replacement of one killed) still runs
        alive = [p for p in mall.processes if p.name == name and p.process.poll() is None]
        check(bool(alive), f"{name} died after the faults")
    print(
        f"chaos: journeys {len(ledger.tickets)}, paid {len(ledger.paid)}, rated "
        f"{len(ledger.ratings)}, lost {len(set(ledger.tickets) - set(by_id)) + ledger.take_lost},"
        f" doubled {sum(n - 1 for n in by_id.values())}; {len(problems)} invariant(s) violated"
    )
    return problems
