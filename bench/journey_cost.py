"""What a citizen costs in CPU: one whole journey, summed over every process that works for it.

The figure an MPP pays for in hardware is not a request rate but the CPU one citizen's visit
burns across the mall's processes (the four services) and what they lean on (PostgreSQL,
RabbitMQ, Redis). It is read from ``/proc/<pid>/stat`` (user + system time) before and after a
batch of journeys, divided by the journeys, and set beside the CPU of the framework's ceiling
hop (one HTTP request making one RPC, ``bench/ceiling.py``) measured the same way in the same
run: ``journey_hops`` says how many ceiling hops a citizen costs.

A journey is what the screens do: take a ticket; the officer calls, starts and completes it;
the citizen's page reads the invoice; the simulator pays it through its signed webhook; the page
reads the rating token; the citizen rates. It runs in phases over ``count`` tickets (all takes,
then all completions, …), so take-ticket alone and completion alone (the press and the events
it sets off: the invoice opened, the rating invitation) are measured too. A phase ends when its
effects are in the databases (read directly, so the wait adds no HTTP request of its own).

PostgreSQL, RabbitMQ and Redis are the machine's own: anything else using them during the run
is counted too, so run it on a quiet machine. A PostgreSQL backend that exits during a phase is
counted through its postmaster's children time.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests
import sqlalchemy as sa

from bench.floor import Floor, bearer

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
# what the mall leans on, by the process name the kernel reports (/proc/<pid>/comm)
INFRASTRUCTURE = {
    "postgresql": ("postgres",),
    "rabbitmq": ("beam.smp", "erl_child_setup", "inet_gethost", "epmd"),
    "redis": ("redis-server",),
}
PHASES = ("take", "call_start", "complete", "pay", "rate")  # a journey, in order
WORKERS = 4  # citizens and officers at once: a floor, not a single line


def _stat(pid: int) -> tuple[str, int, list[str]] | None:
    """(comm, ppid, the fields after the comm) of a live process, or None once it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    head, _, tail = text.rpartition(")")
    fields = tail.split()
    return head.partition("(")[2], int(fields[1]), fields


def cpu_seconds(pid: int, *, children: bool = False) -> float:
    """User + system CPU of ``pid`` (with its reaped children's when ``children``)."""
    stat = _stat(pid)
    if stat is None:
        return 0.0
    fields = stat[2]  # field 3 (state) is fields[0]: utime is field 14, stime 15, cutime 16 …
    ticks = int(fields[11]) + int(fields[12])
    if children:
        ticks += int(fields[13]) + int(fields[14])
    return ticks / CLOCK_TICKS


def infrastructure_seconds() -> dict[str, float]:
    """CPU so far of every PostgreSQL, RabbitMQ and Redis process on the machine. A top process
    (a postmaster, whose parent is not of its kind) also counts its reaped children: backends
    that exited."""
    found = {name: 0.0 for name in INFRASTRUCTURE}
    stats = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit() and (stat := _stat(int(entry.name))) is not None:
            stats[int(entry.name)] = stat
    for pid, (comm, ppid, _) in stats.items():
        for name, comms in INFRASTRUCTURE.items():
            if comm in comms:
                top = stats.get(ppid, ("",))[0] not in comms
                found[name] += cpu_seconds(pid, children=top)
    return found


class Meter:
    """CPU of named processes and the infrastructure, between :meth:`start` and :meth:`stop`."""

    def __init__(self, processes: Callable[[], dict[str, list[int]]]) -> None:
        self.processes = processes

    def read(self) -> dict[str, float]:
        now = {
            name: sum(cpu_seconds(pid) for pid in pids) for name, pids in self.processes().items()
        }
        return {**now, **infrastructure_seconds()}

    def measure(self, work: Callable[[], None]) -> dict[str, float]:
        before = self.read()
        work()
        after = self.read()
        return {name: max(0.0, after[name] - before.get(name, 0.0)) for name in after}


def mall_pids(mall) -> dict[str, list[int]]:
    """The pids of a running test mall's processes, by process name (its services)."""
    pids: dict[str, list[int]] = {}
    for proc in mall.processes:
        pids.setdefault(proc.name, []).append(proc.process.pid)
    return pids


def per_unit_ms(spent: dict[str, float], units: int) -> dict:
    """CPU milliseconds per unit, by process and in all."""
    by_process = {name: round(1000 * seconds / units, 2) for name, seconds in spent.items()}
    return {"cpu_ms": round(sum(by_process.values()), 2), "by_process": by_process}


def _in_parallel(items: list, action: Callable) -> list:
    with ThreadPoolExecutor(WORKERS) as pool:
        return list(pool.map(action, items))


def _count(url: str, sql: str, **params) -> int:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return conn.execute(sa.text(sql), params).scalar_one()
    finally:
        engine.dispose()


def _wait(predicate: Callable[[], bool], what: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.2)


def measure_journeys(floor: Floor, db_urls: dict[str, str], pids, count: int) -> dict:
    """``count`` whole journeys on the floor's ``COST`` service (a fee, one counter per worker),
    phase by phase; CPU per journey and per take and completion."""
    url, service = floor.url, floor.services["COST"]
    officer, admin = floor.officer, bearer(floor.admin_key)
    counters = floor.counters["COST"]
    meter = Meter(pids)
    sessions: dict[int, requests.Session] = {}

    def http() -> requests.Session:
        return sessions.setdefault(threading.get_ident(), requests.Session())

    def ok(answer: requests.Response, status: int = 200) -> dict:
        if answer.status_code != status:
            raise RuntimeError(f"{answer.request.method} {answer.url}: {answer.status_code}")
        return answer.json()

    tickets: list[dict] = []
    phases: dict[str, dict[str, float]] = {}

    def take_all() -> None:
        tickets.extend(
            _in_parallel(
                list(range(count)),
                lambda _: ok(http().post(f"{url}/v1/tickets", json={"service_id": service}), 201),
            )
        )

    def serve(counter: str) -> None:  # one officer per counter: call, start until the line ends
        while True:
            answer = http().post(f"{url}/v1/counters/{counter}/call-next", headers=officer)
            if answer.status_code != 200:
                return  # 404: nobody left
            ok(http().post(f"{url}/v1/tickets/{answer.json()['id']}/start", headers=officer))

    def call_all() -> None:
        _in_parallel(counters, serve)

    def invoices_opened() -> int:
        return _count(
            db_urls["payment"],
            "SELECT count(*) FROM payments WHERE service_id = :s",
            s=service,
        )

    def tokens_shown() -> int:  # the citizen's page reads the token from the queue's ticket
        return _count(
            db_urls["queue"],
            "SELECT count(*) FROM tickets WHERE service_id = :s AND rating_token IS NOT NULL",
            s=service,
        )

    # the service may have journeys of an earlier call: wait for this call's own effects
    invoices_before, tokens_before = invoices_opened(), tokens_shown()

    def complete_all() -> None:
        _in_parallel(
            tickets,
            lambda t: ok(http().post(f"{url}/v1/tickets/{t['id']}/complete", headers=officer)),
        )
        _wait(lambda: invoices_opened() >= invoices_before + count, "every invoice opened")

    def pay_all() -> None:
        def pay(ticket: dict) -> None:
            code = {"code": ticket["access_code"]}
            invoice = ok(http().get(f"{url}/v1/tickets/{ticket['id']}/payment", params=code))
            ok(http().post(f"{url}/v1/simulator/payments/{invoice['id']}/pay", headers=admin), 202)

        _in_parallel(tickets, pay)
        _wait(lambda: tokens_shown() >= tokens_before + count, "every rating token shown")

    def rate_all() -> None:
        answers = {f"U{i}": 4 for i in range(1, 10)}

        def rate(ticket: dict) -> None:
            code = {"code": ticket["access_code"]}
            view = ok(http().get(f"{url}/v1/tickets/{ticket['id']}", params=code))
            token = (view.get("rating") or {}).get("token")
            if not token:
                raise RuntimeError(f"ticket {ticket['number']}: no rating token")
            body = {"token": token, "stars": 5, "answers": answers}
            ok(http().post(f"{url}/v1/ratings", json=body), 201)

        _in_parallel(tickets, rate)

    works = (take_all, call_all, complete_all, pay_all, rate_all)
    for name, work in zip(PHASES, works, strict=True):
        phases[name] = meter.measure(work)
    journey = {
        name: sum(spent.get(name, 0.0) for spent in phases.values()) for name in phases["take"]
    }
    return {
        "journeys": count,
        "journey": per_unit_ms(journey, count),
        **{name: per_unit_ms(spent, count) for name, spent in phases.items()},
    }


def measure_hops(url: str, pids: Callable[[], dict[str, list[int]]], count: int) -> dict:
    """CPU of ``count`` ceiling hops (POST /ping: HTTP in, one RPC, answer), same workers."""
    sessions: dict[int, requests.Session] = {}

    def ping(_: int) -> None:
        session = sessions.setdefault(threading.get_ident(), requests.Session())
        answer = session.post(f"{url}/ping", json={"x": 1}, timeout=10)
        if answer.status_code != 201:
            raise RuntimeError(f"ceiling answered {answer.status_code}")

    spent = Meter(pids).measure(lambda: _in_parallel(list(range(count)), ping))
    return {"hops": count, **per_unit_ms(spent, count)}
