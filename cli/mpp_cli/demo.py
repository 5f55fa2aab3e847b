"""``mpp demo``: a morning of citizens through the API, so screens and dashboards show something.

Citizens arrive (some with priority), take tickets for the mall's services; each agency's open
counters call, start and complete them (a few are no-shows); fees are paid by QRIS through the
simulated provider (only where ``PAYMENT_PROVIDER=simulator``); most citizens then rate.
Everything goes through the gateway with the key given to ``mpp`` (the mall admin's acts for
every agency)."""

from __future__ import annotations

import random
import time
from collections import Counter

from rich.console import Console
from rich.progress import Progress

from mpp_cli.client import ApiError, Client

PRIORITIES = ("elderly", "disability", "pregnant")


def _wait(fn, seconds: float = 10.0, step: float = 0.2):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = fn()
        if value:
            return value
        time.sleep(step)
    return None


def _answers(rng: random.Random, good: bool) -> dict:
    low, high = (3, 4) if good else (1, 3)
    return {f"U{i}": rng.randint(low, high) for i in range(1, 10)}


def play(client: Client, data: dict, *, citizens: int, seed: int, console: Console) -> dict:
    rng = random.Random(seed)
    agencies = {a["code"]: a["id"] for a in client.all("/v1/agencies")}
    wanted = {a["code"] for a in data.get("agencies") or []}
    services = [
        s
        for s in client.all("/v1/services")
        if s["agency_id"] in {agencies[c] for c in wanted if c in agencies}
    ]
    counters = {
        code: [c for c in client.all(f"/v1/agencies/{agencies[code]}/counters") if c["is_open"]]
        for code in wanted
        if code in agencies
    }
    tally: Counter = Counter()
    tickets: list[dict] = []
    with Progress(console=console, transient=False) as progress:
        arrive = progress.add_task("citizens arrive", total=citizens)
        for _ in range(citizens):
            service = rng.choice(services)
            body: dict = {"service_id": service["id"]}
            if rng.random() < 0.15:
                body["priority"] = rng.choice(PRIORITIES)
            try:
                tickets.append(client.post("/v1/tickets", body))
                tally["tickets"] += 1
            except ApiError as exc:  # a closed service, a quota reached: what a kiosk shows
                tally[f"refused {exc.code}"] += 1
            progress.advance(arrive)

        serve = progress.add_task("officers serve", total=len(tickets))
        served: list[dict] = []
        for _ in range(len(tickets) * 2):  # enough rounds; stops when no counter calls anyone
            called = False
            for rows in counters.values():
                for counter in rows:
                    try:
                        ticket = client.post(f"/v1/counters/{counter['id']}/call-next")
                    except ApiError:
                        continue  # nobody waiting for this counter's services
                    called = True
                    path = f"/v1/tickets/{ticket['id']}"
                    if rng.random() < 0.05:
                        for _ in range(3):  # called three times, never came: a no-show
                            client.post(f"{path}/no-show")
                            if client.get(path)["status"] != "called":
                                break
                        tally["no-shows"] += 1
                    else:
                        client.post(f"{path}/start")
                        served.append(client.post(f"{path}/complete"))
                        tally["served"] += 1
                    progress.advance(serve)
            if not called:
                break

        pay = progress.add_task("citizens pay and rate", total=len(served))
        simulator = True
        # each citizen reads their own ticket (its rating token) with the code the kiosk gave
        codes = {ticket["id"]: {"code": ticket["access_code"]} for ticket in tickets}
        for ticket in served:
            path = f"/v1/tickets/{ticket['id']}"
            holder = codes.get(ticket["id"], {})
            if ticket["fee_idr"] and simulator:
                payment = _wait(lambda p=path: _maybe(client.get, f"{p}/payment"))
                if payment:
                    try:
                        client.post(f"/v1/simulator/payments/{payment['id']}/pay")
                        tally["paid"] += 1
                    except ApiError as exc:
                        if exc.status == 404:  # a real provider: no simulated payments
                            simulator = False
            if rng.random() < 0.8:
                token = _wait(
                    lambda p=path, code=holder: (
                        (_maybe(client.get, p, params=code) or {}).get("rating") or {}
                    ).get("token")
                )
                if token:
                    good = rng.random() < 0.8
                    rating = {
                        "token": token,
                        "stars": rng.randint(4, 5) if good else rng.randint(1, 2),
                        "answers": _answers(rng, good),
                    }
                    if not good:
                        rating["comment"] = "Antrean terlalu lama, petugas kurang ramah."
                    client.post("/v1/ratings", rating)
                    tally["ratings"] += 1
            progress.advance(pay)
    return dict(sorted(tally.items()))


def _maybe(fn, *args, **kwargs):
    try:
        return fn(*args, **kwargs)
    except ApiError:
        return None
