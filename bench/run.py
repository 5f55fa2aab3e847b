"""One benchmark run: the framework's ceiling and the mall on the same machine, same generator.

    make bench                      # the full run (~8 minutes on 2 cores)
    .venv/bin/python -m bench.run --quick   # seconds per part, to check the machinery

It starts everything it measures itself: a fresh RabbitMQ vhost, fresh PostgreSQL databases, the
two ceiling services and the four mall services as ``nameko run`` processes. It prints a table
and writes ``bench/results/<timestamp>.json``. Method and caveats: ``bench/README.md``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import functools
import json
import os
import platform
import subprocess
import sys
import threading
import time
from pathlib import Path

import requests
from tqdm import tqdm

from bench import history, journey_cost, loadgen, web_page
from bench.floor import Floor, open_floor
from tests.support import infra
from tests.support.mall import SERVICES, Mall, ServiceProcess, free_port

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
JSON = {"Content-Type": "application/json"}
TARGETS = {
    "take_ratio": ("take-ticket / ceiling", ">=", 0.7),
    "open_loop_p99_ms": ("p99 at 100 req/s (ms)", "<", 150),
    "display_p99_ms": ("called→SSE p99 (ms)", "<", 250),
    "token_p99_ms": ("completed→token p99 (ms)", "<", 250),
    "growth_ratio": ("p50 1M / 1k history", "<=", 1.3),
    "ticket_page_kb": ("ticket page on a weak phone (KB)", "<", 100),
    "ticket_page_ms": ("ticket page shown, weak phone (ms)", "<", 1000),
}


def log(message: str) -> None:
    tqdm.write(f"[bench {time.strftime('%H:%M:%S')}] {message}")


# ---------------------------------------------------------------- the ceiling


def start_bench_service(proc: ServiceProcess, service_class: str) -> None:
    """``nameko run`` one of the bench's own services (config ``bench/ceiling.yaml``, which takes
    ``AMQP_URI`` and ``CEILING_HTTP_ADDRESS`` from ``proc.env``), logging beside the run's logs.
    It runs through the mall's runner (``mpp_chassis.run``: ``nameko run`` without kombu's
    per-connection librabbitmq probe), so the ceiling is nameko at its best, as the mall runs."""
    proc.log = open(proc.log_path, "ab")
    proc.process = subprocess.Popen(
        [sys.executable, "-m", "mpp_chassis.run", "--config", "bench/ceiling.yaml"]
        + [service_class],
        cwd=ROOT,
        env=proc.env,
        stdout=proc.log,
        stderr=subprocess.STDOUT,
    )


def start_ceiling(amqp_uri: str, log_dir: Path) -> tuple[list[ServiceProcess], str]:
    """The ceiling's two services, started and answering: their processes and the front's URL."""
    port = free_port()
    env = {
        **os.environ,
        "AMQP_URI": amqp_uri,
        "CEILING_HTTP_ADDRESS": f"127.0.0.1:{port}",
    }
    procs = [
        ServiceProcess(
            name, port if name == "front" else free_port(), env, log_dir / f"ceiling-{name}.log"
        )
        for name in ("backend", "front")
    ]
    for proc in procs:
        start_bench_service(proc, f"bench.ceiling:Ceiling{proc.name.capitalize()}")
    procs[1].wait_healthy()
    url = f"http://127.0.0.1:{port}"
    infra_wait(lambda: requests.post(f"{url}/ping", json={"x": 1}, timeout=2).ok, "ceiling RPC")
    return procs, url


def measure_ceiling(amqp_uri: str, log_dir: Path, seconds: float, connections: int) -> dict:
    procs, url = start_ceiling(amqp_uri, log_dir)
    try:
        body = json.dumps({"service_id": "00000000-0000-0000-0000-000000000000"})
        result = loadgen.closed_loop(
            url,
            "POST",
            ["/ping"],
            headers=JSON,
            body=body,
            seconds=seconds,
            connections=connections,
        )
        return result.as_dict()
    finally:
        for proc in reversed(procs):
            proc.stop()


def measure_cost(mall: Mall, floor: Floor, amqp_uri: str, log_dir: Path, journeys: int) -> dict:
    """CPU per citizen journey (and per take, per completion) over every process, beside the
    CPU of one ceiling hop measured the same way in the same run (bench/journey_cost.py)."""

    pids = functools.partial(journey_cost.mall_pids, mall)  # read at each measurement
    cost = journey_cost.measure_journeys(floor, mall.db_urls, pids, journeys)
    procs, url = start_ceiling(amqp_uri, log_dir)
    try:
        hops = {f"ceiling_{p.name}": [p.process.pid] for p in procs}
        cost["ceiling_hop"] = journey_cost.measure_hops(url, lambda: hops, journeys * 8)
    finally:
        for proc in reversed(procs):
            proc.stop()
    hop = cost["ceiling_hop"]["cpu_ms"]
    for part in ("journey", "take", "complete"):
        cost[part]["hops"] = round(cost[part]["cpu_ms"] / hop, 1) if hop else None
    return cost


def infra_wait(predicate, what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if predicate():
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"timed out waiting for {what}")


# ---------------------------------------------------------------- the mall


def start_mall(amqp_uri: str, log_dir: Path, backend: str) -> tuple[Mall, list[str]]:
    if backend == "postgres":
        urls = {name: infra.create_database(f"mpp_bench_{name}") for name in SERVICES}
    else:
        urls = {name: f"sqlite:///{log_dir}/{name}.db" for name in SERVICES}
    # rate limits guard a real mall against abuse; a benchmark is the abuse it must not see
    unlimited = {"RATE_LIMIT_PER_MINUTE": "100000000", "RATE_LIMIT_PUBLIC_PER_MINUTE": "100000000"}
    mall = Mall(amqp_uri, urls, log_dir, {"OUTBOX_POLL_SECONDS": "1", **unlimited})
    mall.start()
    return mall, [u for u in urls.values() if u.startswith("postgresql")]


def take(session: requests.Session, url: str, service_id: str) -> dict:
    answer = session.post(f"{url}/v1/tickets", json={"service_id": service_id}, timeout=10)
    answer.raise_for_status()
    return answer.json()


def measure_paths(floor: Floor, seconds: float, connections: int) -> dict:
    service = floor.services["THRU"]
    body = json.dumps({"service_id": service})
    take_result = loadgen.closed_loop(
        floor.url,
        "POST",
        ["/v1/tickets"],
        headers=JSON,
        body=body,
        seconds=seconds,
        connections=connections,
    )
    call_paths = [f"/v1/counters/{c}/call-next" for c in floor.counters["THRU"]]
    call_result = loadgen.closed_loop(
        floor.url,
        "POST",
        call_paths,
        headers={**JSON, **floor.officer},
        body="{}",
        seconds=max(1, seconds * 0.8),
        connections=connections,
    )
    return {"take_ticket": take_result.as_dict(), "call_next": call_result.as_dict()}


def measure_open_loop(floor: Floor, rate: float, seconds: float) -> dict:
    service = floor.services["OPEN"]
    counters = floor.counters["OPEN"]
    out = {}
    with tqdm(total=int(rate * seconds) * 2, desc="open loop 100 req/s", leave=False) as bar:

        def send_take(session: requests.Session, i: int) -> bool:
            answer = session.post(
                f"{floor.url}/v1/tickets", json={"service_id": service}, timeout=10
            )
            return answer.status_code == 201

        def send_call(session: requests.Session, i: int) -> bool:
            answer = session.post(
                f"{floor.url}/v1/counters/{counters[i % len(counters)]}/call-next",
                headers=floor.officer,
                timeout=10,
            )
            return answer.status_code == 200

        out["take_ticket"] = loadgen.open_loop(
            send_take, rate=rate, seconds=seconds, progress=bar.update
        ).as_dict()
        out["call_next"] = loadgen.open_loop(
            send_call, rate=rate, seconds=seconds, progress=bar.update
        ).as_dict()
    return out


class InvitationWatcher:
    """Consumes ``rating_invited`` from a queue bound before the run; records arrival per ticket."""

    def __init__(self, amqp_uri: str) -> None:
        from kombu import Connection, Exchange, Queue

        self.arrived: dict[str, float] = {}
        self.connection = Connection(amqp_uri)
        exchange = Exchange("rating.events", type="topic", durable=True, auto_delete=False)
        self.queue = Queue(
            "bench-rating-invited",
            exchange=exchange,
            routing_key="rating_invited",
            exclusive=True,
            auto_delete=True,
        )
        self.queue(self.connection.channel()).declare()
        self._stop = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _on_message(self, body, message) -> None:
        envelope = body if isinstance(body, dict) else json.loads(body)
        self.arrived.setdefault(envelope["payload"]["ticket_id"], time.monotonic())
        message.ack()

    def _run(self) -> None:
        with self.connection.Consumer(self.queue, callbacks=[self._on_message], accept=["json"]):
            while not self._stop:
                try:
                    self.connection.drain_events(timeout=0.2)
                except TimeoutError:
                    pass

    def close(self) -> None:
        self._stop = True
        self.thread.join(timeout=5)
        self.connection.release()


def prepare_serving(floor: Floor, code: str, count: int, workers: int = 8) -> list[str]:
    """``count`` tickets taken, called and started (serving), ready to be completed."""
    from concurrent.futures import ThreadPoolExecutor

    service = floor.services[code]
    counters = floor.counters[code]
    local = threading.local()

    def session() -> requests.Session:
        return local.__dict__.setdefault("s", requests.Session())

    def call_and_start(i: int) -> str:
        for _ in range(20):  # another counter may hold the only waiting ticket (SKIP LOCKED)
            called = session().post(
                f"{floor.url}/v1/counters/{counters[i % len(counters)]}/call-next",
                headers=floor.officer,
                timeout=10,
            )
            if called.status_code != 404:
                break
            time.sleep(0.05)
        called.raise_for_status()
        ticket = called.json()["id"]
        session().post(
            f"{floor.url}/v1/tickets/{ticket}/start", headers=floor.officer, timeout=10
        ).raise_for_status()
        return ticket

    with (
        ThreadPoolExecutor(workers) as pool,
        tqdm(total=count * 2, desc="prepare serving", leave=False) as bar,
    ):
        for _ in pool.map(lambda i: take(session(), floor.url, service), range(count)):
            bar.update()
        tickets = []
        for ticket in pool.map(call_and_start, range(count)):
            tickets.append(ticket)
            bar.update()
        return tickets


def measure_token(floor: Floor, amqp_uri: str, rate: float, seconds: float) -> dict:
    tickets = prepare_serving(floor, "RATE", int(rate * seconds))
    watcher = InvitationWatcher(amqp_uri)
    completed: dict[str, float] = {}
    try:
        with tqdm(total=len(tickets), desc="complete at 100/s", leave=False) as bar:

            def send(session: requests.Session, i: int) -> bool:
                answer = session.post(
                    f"{floor.url}/v1/tickets/{tickets[i]}/complete",
                    headers=floor.officer,
                    timeout=10,
                )
                completed[tickets[i]] = time.monotonic()
                return answer.status_code == 200

            load = loadgen.open_loop(send, rate=rate, seconds=seconds, progress=bar.update)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not set(completed) <= set(watcher.arrived):
            time.sleep(0.1)
    finally:
        watcher.close()
    latencies = [watcher.arrived[t] - completed[t] for t in completed if t in watcher.arrived]
    return {
        "completed": len(completed),
        "invited": len(latencies),
        "missing": len(completed) - len(latencies),
        "p50_ms": _ms(loadgen.percentile(latencies, 50)),
        "p99_ms": _ms(loadgen.percentile(latencies, 99)),
        "complete_request": load.as_dict(),
    }


def sequential_p50(floor: Floor, code: str, count: int, bar: tqdm) -> dict:
    session = requests.Session()
    service, counter = floor.services[code], floor.counters[code][0]
    takes, calls = [], []
    for _ in range(count):
        started = time.monotonic()
        take(session, floor.url, service)
        takes.append(time.monotonic() - started)
        bar.update()
    for _ in range(count):
        started = time.monotonic()
        session.post(
            f"{floor.url}/v1/counters/{counter}/call-next", headers=floor.officer, timeout=10
        ).raise_for_status()
        calls.append(time.monotonic() - started)
        bar.update()
    return {
        "take_p50_ms": _ms(loadgen.percentile(takes, 50)),
        "call_p50_ms": _ms(loadgen.percentile(calls, 50)),
        "samples": count,
    }


def measure_growth(
    floor: Floor, queue_db: str | None, small: int, large: int, samples: int
) -> dict:
    if not queue_db:
        return {"skipped": "history growth needs PostgreSQL (--backend postgres)"}
    ids = dict(
        agencies=[floor.agency_id],
        services=list(floor.services.values()),
        counters=[c for cs in floor.counters.values() for c in cs],
    )
    out = {}
    with tqdm(total=large, desc="history rows", unit="row", unit_scale=True, leave=False) as bar:
        history.load_history(queue_db, small, progress=bar.update, **ids)
        with tqdm(total=samples * 2, desc="p50 at small history", leave=False) as sbar:
            out["small"] = {"history": small, **sequential_p50(floor, "GROW1", samples, sbar)}
        history.load_history(queue_db, large, progress=bar.update, **ids)
    with tqdm(total=samples * 2, desc="p50 at large history", leave=False) as sbar:
        out["large"] = {"history": large, **sequential_p50(floor, "GROW2", samples, sbar)}
    for key in ("take_p50_ms", "call_p50_ms"):
        out[key.replace("p50_ms", "ratio")] = round(out["large"][key] / out["small"][key], 2)
    return out


def measure_noop(mall: Mall, floor: Floor, log_dir: Path, seconds: float, connections: int) -> dict:
    """Take-ticket through the same gateway with ``bench/noop_queue.py`` in the queue's place (the
    real queue is stopped for good: this part runs last)."""
    for proc in [p for p in mall.processes if p.name == "queue"]:
        proc.stop()
        mall.processes.remove(proc)
    port = free_port()
    noop = ServiceProcess(
        "queue",
        port,
        {**mall.env_for("queue", port), "CEILING_HTTP_ADDRESS": f"127.0.0.1:{port}"},
        log_dir / "noop-queue.log",
    )
    start_bench_service(noop, "bench.noop_queue:NoopQueue")
    try:
        noop.wait_healthy()
        body = json.dumps({"service_id": floor.services["THRU"]})

        def answered() -> bool:
            return requests.post(f"{floor.url}/v1/tickets", data=body, headers=JSON, timeout=5).ok

        infra_wait(answered, "take-ticket through the no-op queue")
        return loadgen.closed_loop(
            floor.url,
            "POST",
            ["/v1/tickets"],
            headers=JSON,
            body=body,
            seconds=seconds,
            connections=connections,
        ).as_dict()
    finally:
        noop.stop()


def measure_display(floor: Floor, streams: int, calls: int) -> dict:
    """Called → received on the SSE stream, measured by ``bench/display_stream.py``."""
    from bench.display_stream import measure

    return measure(floor=floor, streams=streams, calls=calls)


def _ms(value: float | None) -> float | None:
    return None if value is None else round(value * 1000, 2)


# ---------------------------------------------------------------- report


def verdicts(results: dict) -> dict:
    figures = {}
    ceiling = results.get("ceiling", {}).get("rps")
    paths = results.get("closed_loop", {})
    if ceiling and paths:
        figures["take_ratio"] = round(paths["take_ticket"]["rps"] / ceiling, 2)
        figures["call_ratio"] = round(paths["call_next"]["rps"] / ceiling, 2)
    if ceiling and results.get("noop"):
        figures["noop_ratio"] = round(results["noop"]["rps"] / ceiling, 2)
    open_loop = results.get("open_loop", {})
    if open_loop:
        figures["open_loop_p99_ms"] = max(r["p99_ms"] or 0 for r in open_loop.values())
    figures["display_p99_ms"] = results.get("display", {}).get("p99_ms")
    figures["token_p99_ms"] = results.get("token", {}).get("p99_ms")
    growth = results.get("growth", {})
    if "take_ratio" in growth:
        figures["growth_ratio"] = max(growth["take_ratio"], growth["call_ratio"])
    cost = results.get("cost", {})
    if cost:
        figures["journey_cpu_ms"] = cost["journey"]["cpu_ms"]
        figures["journey_hops"] = cost["journey"]["hops"]
        figures["take_cpu_ms"] = cost["take"]["cpu_ms"]
        figures["complete_cpu_ms"] = cost["complete"]["cpu_ms"]
        figures["ceiling_hop_cpu_ms"] = cost["ceiling_hop"]["cpu_ms"]
    web = results.get("web", {})
    if "bytes_median" in web:
        figures["ticket_page_kb"] = round(web["bytes_median"] / 1000, 1)
        figures["ticket_page_ms"] = web["shown_ms_median"]
    checks = {}
    for key, (_, op, target) in TARGETS.items():
        value = figures.get(key)
        if value is None:
            checks[key] = None
        else:
            checks[key] = {">=": value >= target, "<": value < target, "<=": value <= target}[op]
    return {"figures": figures, "meets": checks}


def table(results: dict) -> str:
    rows = [("part", "req/s", "p50 ms", "p99 ms", "non-2xx", "errors")]

    def add(name: str, r: dict | None) -> None:
        if r:
            rows.append(
                (
                    name,
                    r.get("rps", ""),
                    r.get("p50_ms"),
                    r.get("p99_ms"),
                    r.get("non_2xx", ""),
                    r.get("errors", ""),
                )
            )

    add("ceiling (http→1 rpc)", results.get("ceiling"))
    for key, r in results.get("closed_loop", {}).items():
        add(f"{key} closed loop", r)
    add("take_ticket, no-op queue", results.get("noop"))
    for key, r in results.get("open_loop", {}).items():
        add(f"{key} @100/s open loop", r)
    token = results.get("token")
    if token:
        add("completed→token (non-2xx = missed)", {**token, "non_2xx": token.get("missing")})
    token_low = results.get("token_low")
    if token_low:
        rate = token_low["complete_request"]["extra"].get("target_rate")
        add(f"completed→token @{rate}/s", {**token_low, "non_2xx": token_low.get("missing")})
    display = results.get("display")
    if display and "p99_ms" in display:
        add("called→SSE (non-2xx = missed)", {**display, "non_2xx": display.get("missing")})
    growth = results.get("growth", {})
    for size in ("small", "large"):
        if size in growth:
            g = growth[size]
            rows.append(
                (
                    f"take/call p50 @{g['history']:,} history",
                    "",
                    f"{g['take_p50_ms']}/{g['call_p50_ms']}",
                    "",
                    "",
                    "",
                )
            )
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)) for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    verdict = results["verdict"]
    lines.append("")
    for key, (label, op, target) in TARGETS.items():
        value = verdict["figures"].get(key)
        meets = verdict["meets"][key]
        state = "n/a" if meets is None else ("OK" if meets else "MISS")
        lines.append(f"{label:<28} {value!s:>8}  target {op} {target:<5} {state}")
    if "noop_ratio" in verdict["figures"]:
        label, value = "no-op queue / ceiling", verdict["figures"]["noop_ratio"]
        lines.append(f"{label:<28} {value!s:>8}  (no target: the gateway's own share)")
    cost = results.get("cost")
    if cost:
        hop = cost["ceiling_hop"]["cpu_ms"]
        lines.append(f"CPU of one ceiling hop (http→1 rpc): {hop} ms, all processes")
        for part in ("journey", "take", "complete"):
            label = {"journey": "a whole journey", "take": "take-ticket", "complete": "completion"}
            lines.append(
                f"CPU of {label[part]:<16} {cost[part]['cpu_ms']:>8} ms = {cost[part]['hops']} hops"
                f"  ({', '.join(f'{k} {v}' for k, v in cost[part]['by_process'].items())})"
            )
    for key in ("display", "growth", "web"):
        if "skipped" in results.get(key, {}):
            lines.append(f"{key}: skipped: {results[key]['skipped']}")
    return "\n".join(lines)


def machine() -> dict:
    def rabbit_version() -> str | None:
        try:
            return (
                requests.get(f"{infra.RABBIT_API}/overview", timeout=5)
                .json()
                .get("rabbitmq_version")
            )
        except requests.RequestException:
            return None

    return {
        "cpus": os.cpu_count(),
        "cpu_model": next(
            (
                ln.split(":", 1)[1].strip()
                for ln in Path("/proc/cpuinfo").read_text().splitlines()
                if ln.startswith("model name")
            ),
            platform.processor(),
        )
        if Path("/proc/cpuinfo").exists()
        else platform.processor(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "rabbitmq": rabbit_version(),
        "load_avg_at_start": os.getloadavg(),
        "generator": "wrk" if loadgen.have_wrk() else "python-threads",
    }


# ---------------------------------------------------------------- main


PROFILES = {
    "full": dict(
        seconds=20,
        connections=20,
        rate=100,
        open_seconds=30,
        token_seconds=10,
        token_low_rate=20,
        token_low_seconds=10,
        small=1_000,
        large=1_000_000,
        samples=300,
        streams=5000,
        calls=20,
        web_runs=7,
        journeys=200,
    ),
    "quick": dict(
        seconds=1,
        connections=10,
        rate=100,
        open_seconds=1,
        token_seconds=1,
        token_low_rate=10,
        token_low_seconds=1,
        small=1_000,
        large=20_000,
        samples=30,
        streams=50,
        calls=6,
        web_runs=2,
        journeys=12,
    ),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="seconds per part (a smoke run)")
    parser.add_argument("--backend", choices=("postgres", "sqlite"), default="postgres")
    parser.add_argument(
        "--only",
        nargs="*",
        default=None,
        help="parts: ceiling paths open token growth display web cost noop",
    )
    parser.add_argument("--python-generator", action="store_true", help="do not use wrk")
    args = parser.parse_args(argv)
    profile = PROFILES["quick" if args.quick else "full"]
    parts = set(
        args.only
        or ["ceiling", "paths", "open", "token", "growth", "display", "web", "cost", "noop"]
    )
    if args.python_generator:
        loadgen.have_wrk = lambda: False

    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    log_dir = RESULTS / f"{stamp}-logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    infra.require_rabbitmq()
    results: dict = {
        "started_at": stamp,
        "profile": "quick" if args.quick else "full",
        "backend": args.backend,
        "machine": machine(),
        "settings": profile,
    }
    began = time.monotonic()
    vhost = infra.create_vhost()
    if vhost is None:
        print(
            "RabbitMQ's management API does not answer (bench needs a fresh vhost):"
            " rabbitmq-plugins enable rabbitmq_management",
            file=sys.stderr,
        )
        return 2
    amqp_uri = infra.uri_for_vhost(vhost)
    mall, databases = None, []
    try:
        if "ceiling" in parts:
            log("ceiling: http → one RPC")
            results["ceiling"] = measure_ceiling(
                amqp_uri, log_dir, profile["seconds"], profile["connections"]
            )
        log(f"starting the mall on {args.backend}")
        mall, databases = start_mall(amqp_uri, log_dir, args.backend)
        floor = open_floor(mall.url)
        for code, prefix, counters in (
            ("THRU", "T", 20),  # one counter per connection: an officer presses for their own
            ("OPEN", "O", 20),
            ("RATE", "R", 4),
            ("GROW1", "G", 1),
            ("GROW2", "K", 1),
            ("DISP", "D", 2),
        ):
            floor.add_service(code, prefix, counters=counters)
        # a paid service: a journey goes through all four services
        floor.add_service("COST", "C", fee_idr=10000, counters=journey_cost.WORKERS)
        if "paths" in parts:
            log("take-ticket and call-next, closed loop")
            results["closed_loop"] = measure_paths(
                floor, profile["seconds"], profile["connections"]
            )
        if "open" in parts:
            log(f"open loop at {profile['rate']} req/s")
            results["open_loop"] = measure_open_loop(
                floor, profile["rate"], profile["open_seconds"]
            )
        if "token" in parts:
            log("completed → rating token")
            results["token"] = measure_token(
                floor, amqp_uri, profile["rate"], profile["token_seconds"]
            )
            # the same pipeline at a rate this machine sustains: its own latency, not a backlog's
            log(f"completed → rating token at {profile['token_low_rate']}/s")
            results["token_low"] = measure_token(
                floor, amqp_uri, profile["token_low_rate"], profile["token_low_seconds"]
            )
        if "display" in parts:
            log(f"called → SSE with {profile['streams']} streams")
            results["display"] = measure_display(floor, profile["streams"], profile["calls"])
        if "growth" in parts:
            log(f"cost growth: {profile['small']:,} vs {profile['large']:,} tickets of history")
            queue_db = mall.db_urls["queue"] if args.backend == "postgres" else None
            results["growth"] = measure_growth(
                floor, queue_db, profile["small"], profile["large"], profile["samples"]
            )
        if "web" in parts:
            log("the citizen's ticket page on a throttled phone")
            floor.add_service("WEB", "P")
            results["web"] = web_page.measure_ticket_page(
                mall.url, floor.services["WEB"], runs=profile["web_runs"]
            )
        if "cost" in parts:
            log(f"CPU of {profile['journeys']} whole journeys, beside the ceiling hop's")
            results["cost"] = measure_cost(mall, floor, amqp_uri, log_dir, profile["journeys"])
        if "noop" in parts:  # last: it replaces the queue
            log("take-ticket through the gateway with a no-op queue")
            results["noop"] = measure_noop(
                mall, floor, log_dir, profile["seconds"], profile["connections"]
            )
    finally:
        if mall:
            mall.stop()
        infra.delete_vhost(vhost)
        for url in databases:
            infra.drop_database(url)
    results["seconds"] = round(time.monotonic() - began, 1)
    results["verdict"] = verdicts(results)
    out = RESULTS / f"{stamp}.json"
    out.write_text(json.dumps(results, indent=2, default=str))
    print(table(results))
    print(
        f"\n{results['seconds']} s; JSON: {out.relative_to(ROOT)};"
        f" logs: {log_dir.relative_to(ROOT)}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
