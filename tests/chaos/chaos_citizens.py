"""Simulated citizens and officers that retry idempotently, and the faults injected under them.

A client that loses an answer (connection reset by a killed gateway, 503 while a service
restarts) repeats the *same* request with the same ``Idempotency-Key``; the gateway replays the
first answer, so a retried take-ticket never issues a second ticket. Officers re-read the ticket
when a retried action answers 409, because the first attempt may have been applied.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from dataclasses import dataclass, field
from urllib.parse import quote

import requests

from bench.floor import Floor, bearer
from tests.support import infra
from tests.support.fake_provider import FakeProvider
from tests.support.mall import SERVICES, Mall

_log = logging.getLogger("chaos")
RETRYABLE = {429, 502, 503, 504}
IN_PROGRESS_PATIENCE = 20.0
POLL_SECONDS = 1.0  # a citizen glancing at the ticket page
FINAL = {"done", "no_show", "cancelled", "transferred"}


def nik_for(i: int) -> str:
    """A structurally valid NIK (DKI Jakarta, born 15-08-1985), unique per citizen."""
    return f"317101150885{i + 1:04d}"


@dataclass
class Ledger:
    """What the clients know happened; the checks compare it with the databases."""

    tickets: dict[str, dict] = field(default_factory=dict)  # id -> {citizen, nik, paid}
    take_lost: int = 0  # take requests that ended without an answer (should be 0: idempotency)
    paid: set[str] = field(default_factory=set)  # ticket ids whose invoice the citizen paid
    ratings: dict[str, int] = field(default_factory=dict)  # ticket id -> stars accepted
    stuck_keys: list[str] = field(default_factory=list)  # IDEMPOTENCY_IN_PROGRESS that never ended
    retries: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def retried(self) -> None:
        with self.lock:
            self.retries += 1


def send(
    ledger: Ledger,
    method: str,
    url: str,
    *,
    deadline: float,
    idempotency_key: str | None = None,
    ok: tuple[int, ...] = (200, 201, 202),
    **kwargs,
) -> requests.Response | None:
    """Send until a non-retryable answer; None when the deadline passes without one.

    409 ``IDEMPOTENCY_IN_PROGRESS`` (the first attempt is still running) is retried for up to
    ``IN_PROGRESS_PATIENCE`` seconds; a key still in progress then is recorded as stuck (the
    first attempt died with its gateway) and its answer returned.
    """
    headers = dict(kwargs.pop("headers", None) or {})
    if idempotency_key:
        headers["Idempotency-Key"] = idempotency_key
    in_progress_since = None
    while time.monotonic() < deadline:
        try:
            answer = requests.request(method, url, headers=headers, timeout=8, **kwargs)
        except requests.RequestException:
            answer = None
        if answer is not None and _in_progress(answer):
            in_progress_since = in_progress_since or time.monotonic()
            if time.monotonic() - in_progress_since > IN_PROGRESS_PATIENCE:
                with ledger.lock:
                    ledger.stuck_keys.append(f"{method} {url}")
                return answer
        elif answer is not None and answer.status_code not in RETRYABLE:
            return answer
        ledger.retried()
        time.sleep(0.3)
    return None


def _in_progress(answer: requests.Response) -> bool:
    if answer.status_code != 409:
        return False
    try:
        return answer.json()["error"]["code"] == "IDEMPOTENCY_IN_PROGRESS"
    except (ValueError, KeyError, TypeError):
        return False


def citizen(
    floor: Floor, ledger: Ledger, i: int, service_code: str, deadline: float, pay=None
) -> None:
    """Take a ticket, wait to be served, pay if there is a fee (``pay``: through the simulator
    unless told), then rate."""
    pay = pay or pay_simulated
    nik = nik_for(i)
    answer = send(
        ledger,
        "POST",
        f"{floor.url}/v1/tickets",
        deadline=deadline,
        idempotency_key=f"take-{uuid.uuid4()}",
        json={"service_id": floor.services[service_code], "nik": nik},
    )
    if answer is None or answer.status_code != 201:
        with ledger.lock:
            ledger.take_lost += 1
        _log.warning("take failed: %s", answer.status_code if answer is not None else "no answer")
        return
    ticket, code = answer.json()["id"], answer.json()["access_code"]
    with ledger.lock:
        ledger.tickets[ticket] = {
            "citizen": i,
            "paid_service": service_code == "PAID",
            "code": code,  # the citizen's: reads the ticket, its payment and its rating token
        }
    view = wait_view(floor, ledger, ticket, lambda v: v["status"] in FINAL, deadline)
    if view is None or view["status"] != "done":
        return
    if service_code == "PAID":
        if not pay(floor, ledger, ticket, deadline):
            return
    view = wait_view(floor, ledger, ticket, lambda v: v.get("rating"), deadline)
    if view is None:
        return
    stars = 1 + i % 5
    rated = send(
        ledger,
        "POST",
        f"{floor.url}/v1/ratings",
        deadline=deadline,
        idempotency_key=f"rate-{ticket}",
        json={"token": view["rating"]["token"], "stars": stars},
    )
    if rated is not None and rated.status_code in (201, 409):
        # 409: an earlier attempt whose answer was lost used the token (checked against the DB)
        with ledger.lock:
            ledger.ratings[ticket] = stars


def read_own(floor: Floor, ledger: Ledger, ticket: str, part: str, deadline: float):
    """GET the citizen's own ticket (or ``part`` of it) with the code the kiosk gave."""
    code = {"code": ledger.tickets[ticket]["code"]}
    url = f"{floor.url}/v1/tickets/{ticket}{part}"
    return send(ledger, "GET", url, deadline=deadline, params=code)


def wait_view(floor: Floor, ledger: Ledger, ticket: str, predicate, deadline: float):
    while time.monotonic() < deadline:
        answer = read_own(floor, ledger, ticket, "", deadline)
        if answer is not None and answer.ok and predicate(view := answer.json()):
            return view
        time.sleep(POLL_SECONDS)
    return None


def _pay_until_paid(floor: Floor, ledger: Ledger, ticket: str, deadline: float, ask) -> bool:
    """Read the invoice until it is paid, calling ``ask(invoice)`` (pay it, notify it) at most
    every 4 s meanwhile: a lost webhook or a refused notice is asked again, as clients do."""
    asked_at = 0.0
    while time.monotonic() < deadline:
        invoice = read_own(floor, ledger, ticket, "/payment", deadline)
        if invoice is not None and invoice.ok:
            body = invoice.json()
            if body["status"] == "paid":
                with ledger.lock:
                    ledger.paid.add(ticket)
                return True
            now = time.monotonic()
            if now - asked_at > 4 and ask(body) is not False:
                asked_at = now  # when it was asked, as before the send
        time.sleep(0.5)
    return False


def pay_simulated(floor: Floor, ledger: Ledger, ticket: str, deadline: float) -> bool:
    """Pay through the simulator; ask again while the invoice stays pending (a lost webhook)."""

    def ask(body: dict) -> None:
        send(
            ledger,
            "POST",
            f"{floor.url}/v1/simulator/payments/{body['id']}/pay",
            deadline=deadline,
            ok=(202, 409),
            headers=bearer(floor.admin_key),  # the test double needs the agency's admin
        )

    return _pay_until_paid(floor, ledger, ticket, deadline, ask)


def pay_at_provider(fake: FakeProvider):
    """The citizen pays at the provider (the fake Midtrans settles the order) and the provider
    notifies the mall's webhook, again while the notice is refused (as Midtrans retries)."""

    def pay(floor: Floor, ledger: Ledger, ticket: str, deadline: float) -> bool:
        def ask(body: dict) -> bool:
            order = next((o for o in list(fake.midtrans) if o.startswith(body["id"])), None)
            if order is None:
                return False  # no charge at the provider yet: look again at the next read
            fake.settle(order)
            send(
                ledger,
                "POST",
                f"{floor.url}/v1/webhooks/payments/midtrans",
                deadline=deadline,
                data=fake.midtrans_notice(order),
                headers={"Content-Type": "application/json"},
            )
            return True

        return _pay_until_paid(floor, ledger, ticket, deadline, ask)

    return pay


def officer(floor: Floor, ledger: Ledger, counter: str, stop: threading.Event, deadline: float):
    """Call, start and complete tickets at one counter until told to stop."""
    while not stop.is_set() and time.monotonic() < deadline:
        # one key per press, as the console sends (web/counter.js): a call whose answer was
        # lost (a reply dropped in a broker restart, a killed process) is replayed on retry,
        # not followed by a second call that leaves the first ticket called at the counter
        called = send(
            ledger,
            "POST",
            f"{floor.url}/v1/counters/{counter}/call-next",
            deadline=deadline,
            idempotency_key=str(uuid.uuid4()),
            headers=floor.officer,
        )
        if called is None or called.status_code != 200:
            time.sleep(0.3)
            continue
        finish(floor, ledger, called.json()["id"], deadline)


def finish(floor: Floor, ledger: Ledger, ticket: str, deadline: float) -> None:
    """Drive one ticket from called to done; re-read it when an action answers 409."""
    for action, target in (("start", "serving"), ("complete", "done")):
        answer = send(
            ledger,
            "POST",
            f"{floor.url}/v1/tickets/{ticket}/{action}",
            deadline=deadline,
            headers=floor.officer,
        )
        if answer is not None and answer.status_code == 409:
            view = send(
                ledger,
                "GET",
                f"{floor.url}/v1/tickets/{ticket}",
                deadline=deadline,
                headers=floor.officer,  # the officer's screen reads the ticket it serves
            )
            status = view.json()["status"] if view is not None and view.ok else None
            if status not in (target, "done"):
                _log.warning("ticket %s is %s after %s answered 409", ticket, status, action)
                return


def sweep(floor: Floor, ledger: Ledger, deadline: float) -> None:
    """Finish tickets left called or serving by an answer lost in a kill (the officer's screen)."""
    for ticket in list(ledger.tickets):
        view = send(
            ledger,
            "GET",
            f"{floor.url}/v1/tickets/{ticket}",
            deadline=deadline,
            headers=floor.officer,  # the officer's screen reads the ticket it serves
        )
        if view is not None and view.ok and view.json()["status"] in ("called", "serving"):
            finish(floor, ledger, ticket, deadline)


# ---------------------------------------------------------------- faults


def kill_one_of_two(mall: Mall) -> float:
    """SIGKILL one of the two processes of every service at once; the other carries the load
    while a replacement starts (as a supervisor would start one); seconds until all are back.
    The older one of queue, payment and rating (consuming from the same queues as the other);
    the gateway's second one (the clients here reach the first: there is no load balancer)."""
    began = time.monotonic()
    victims = []
    for name in SERVICES:
        alive = [p for p in mall.processes if p.name == name and p.process.poll() is None]
        if len(alive) > 1:
            victims.append(alive[-1] if name == "gateway" else alive[0])
    for victim in victims:
        victim.kill()
    replacements = [mall.start_service(v.name, port=v.port) for v in victims]
    for replacement in replacements:
        replacement.wait_healthy(timeout=60)
    return time.monotonic() - began


def kill_and_restart(mall: Mall, name: str) -> float:
    """SIGKILL the newest process of ``name``, start a new one on the same port; seconds down."""
    victim = [p for p in mall.processes if p.name == name][-1]
    began = time.monotonic()
    victim.kill()
    replacement = mall.start_service(name, port=victim.port)
    replacement.wait_healthy(timeout=60)
    return time.monotonic() - began


def bound_event_types(vhost: str, api: str = infra.RABBIT_API) -> set[tuple[str, str]]:
    """(source service, event type) pairs some queue of ``vhost`` is bound to."""
    answer = requests.get(f"{api}/bindings/{quote(vhost, safe='')}", timeout=10)
    answer.raise_for_status()
    return {
        (b["source"].removesuffix(".events"), b["routing_key"])
        for b in answer.json()
        if b["source"].endswith(".events")
    }


def drop_broker_connections(vhost: str, api: str = infra.RABBIT_API) -> int:
    """Close every AMQP connection of ``vhost`` from the broker side (management API)."""
    listed = requests.get(f"{api}/vhosts/{quote(vhost, safe='')}/connections", timeout=10)
    listed.raise_for_status()
    closed = 0
    for conn in listed.json():
        answer = requests.delete(
            f"{api}/connections/{quote(conn['name'], safe='')}",
            headers={"X-Reason": "chaos: broker connection reset"},
            timeout=10,
        )
        closed += answer.status_code in (200, 204)
    return closed
