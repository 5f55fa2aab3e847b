"""Ticket called → received on ``GET /v1/display/stream`` with many open streams on ONE gateway.

    .venv/bin/python -m bench.display_stream                     # 5,000 streams, 20 calls
    .venv/bin/python -m bench.display_stream --streams 200 --calls 10   # a quick check

Standalone, it starts its own mall (fresh vhost, SQLite or ``--backend postgres``, one process per
service, so one gateway process; rate limits raised), registers an agency with one service and
one counter, and measures. ``bench/run.py`` calls :func:`measure` on its own floor instead.

Method. The streams are opened by a separate client process that holds them all in one thread
with ``epoll`` (``selectors``; the file-descriptor limit is raised with ``resource.setrlimit``
here and inherited by the client and the mall), while a second thread presses call-next.
Streams are spread over display keys, ``STREAMS_PER_KEY`` each, so opening them stays under the
per-key rate limit. Once every stream has said ``: connected`` (and the gateway's
``mpp_display_streams_open`` gauge is read), ``calls`` waiting tickets are called at ``rate``
per second through the API (open loop: each call-next is sent at its scheduled instant).
Latency = a frame naming the ticket received on a stream − its call-next *sent* (button pressed
→ board shows it), over every (call, stream) pair; also from the event's ``occurred_at`` (the
queue's commit → board: relay, broker, fan-out). Receipt times are taken right after ``recv``
and frames are parsed after the run, so parsing does not delay other streams. (An earlier client
held a greenthread per stream under eventlet and was busier than the gateway it measured.)
Missing deliveries are counted. Percentiles are nearest-rank. The client shares the CPU with
the gateway: at 5,000 streams the figure is an upper bound.

Prints the figures and writes ``bench/results/<timestamp>-display-stream.json``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import re
import resource
import selectors
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlparse

import requests

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
STREAMS_PER_KEY = 400  # under the default 600 requests/minute per key
CONNECTING_AT_ONCE = 200
# a board's frame names the call by the ticket's number, never its id (a board is no citizen's:
# mpp_gateway.display.FRAME_FIELDS); the numbers the run calls are distinct
TICKET = re.compile(rb'"number":"([^"]+)"')
OCCURRED = re.compile(rb'"occurred_at":"([^"]+)"')
OPEN_STREAMS = re.compile(r"^mpp_display_streams_open (\S+)$", re.M)


def raise_fd_limit() -> int:
    """Soft ``RLIMIT_NOFILE`` up to the hard limit (children inherit it); returns the new soft."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else max(soft, 65536)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def percentile(values: list[float], pct: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(len(ordered) * pct / 100) - 1)]


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 2)


# ------------------------------------------------------------ the client (eventlet process)


def _ticket_receipts(per_stream, ticket: bytes):
    """(stream, receipt time) of the first frame naming ``ticket`` (its number) on each
    stream."""
    for index, chunks in enumerate(per_stream):
        for frame, now in _frames(chunks):
            found = TICKET.search(frame)
            if found and found.group(1) == ticket:
                yield index, now
                break


def _frames(chunks: list[tuple[float, bytes]]):
    """(frame bytes, receipt time of the chunk that completed it) for one stream."""
    buffer = b""
    for now, chunk in chunks:
        buffer += chunk
        while b"\n\n" in buffer:
            frame, buffer = buffer.split(b"\n\n", 1)
            yield frame, now


class Streams:
    """Holds the streams in one plain thread with ``epoll`` (``selectors``): each chunk is
    stamped right after ``recv``; parsing waits for the end of the run. (A greenthread per
    stream, under eventlet, cost the client a switch and a timer per chunk: at 5,000 streams it
    was busier than the gateway it measured.)"""

    def __init__(self, host: str, port: int, keys: list[str], count: int) -> None:
        self.host, self.port, self.keys, self.count = host, port, keys, count
        self.selector = selectors.DefaultSelector()
        self.chunks: list[list[tuple[float, bytes]]] = [[] for _ in range(count)]
        self.connected: dict[int, float] = {}
        self.deliveries = 0  # calls (``"number"``) seen so far, counted as chunks arrive

    def open(self, timeout: float) -> None:
        """Connect ``CONNECTING_AT_ONCE`` at a time, each batch once it said ``: connected``."""
        deadline = time.monotonic() + timeout
        for first in range(0, self.count, CONNECTING_AT_ONCE):
            batch = range(first, min(first + CONNECTING_AT_ONCE, self.count))
            for index in batch:
                try:
                    sock = socket.create_connection((self.host, self.port), timeout=30)
                    key = self.keys[index % len(self.keys)]
                    sock.sendall(
                        (
                            f"GET /v1/display/stream HTTP/1.1\r\nHost: {self.host}:{self.port}"
                            f"\r\nAuthorization: Bearer {key}\r\nAccept: text/event-stream\r\n\r\n"
                        ).encode()
                    )
                except OSError:
                    continue
                sock.setblocking(False)
                self.selector.register(sock, selectors.EVENT_READ, index)
            while time.monotonic() < deadline and any(i not in self.connected for i in batch):
                if not self.selector.get_map():
                    return
                self.pump(0.2)

    def pump(self, timeout: float) -> None:
        for key, _ in self.selector.select(timeout):
            try:
                chunk = key.fileobj.recv(65536)
            except BlockingIOError:
                continue
            except OSError:
                chunk = b""
            now = time.time()
            index = key.data
            if not chunk:
                self.selector.unregister(key.fileobj)
                key.fileobj.close()
                continue
            self.chunks[index].append((now, chunk))
            self.deliveries += chunk.count(b'"number"')
            if index not in self.connected and b": connected" in chunk:
                self.connected[index] = now

    def close(self) -> None:
        for key in list(self.selector.get_map().values()):
            self.selector.unregister(key.fileobj)
            key.fileobj.close()
        self.selector.close()


def run_client(args) -> dict:
    raise_fd_limit()
    parsed = urlparse(args.url)
    session = requests.Session()
    officer = {"Authorization": f"Bearer {args.officer_key}"}
    for _ in range(args.calls + args.warmup):
        session.post(
            f"{args.url}/v1/tickets", json={"service_id": args.service}, timeout=30
        ).raise_for_status()

    keys = args.display_keys.split(",")
    streams = Streams(parsed.hostname, parsed.port, keys, args.streams)
    began = time.monotonic()
    streams.open(args.connect_timeout)
    connect_seconds = time.monotonic() - began
    metrics = session.get(f"{args.url}/metrics", timeout=30).text
    gauge = OPEN_STREAMS.search(metrics)

    sent: dict[bytes, float] = {}
    answered: dict[bytes, float] = {}

    def press(calls: int) -> None:  # the officer, on a thread of its own: open loop at ``rate``
        start = time.time()
        for number in range(calls):
            time.sleep(max(0.0, start + number / args.rate - time.time()))
            pressed = time.time()
            answer = session.post(
                f"{args.url}/v1/counters/{args.counter}/call-next", headers=officer, timeout=30
            )
            if answer.status_code == 200:
                ticket = answer.json()["number"].encode()
                sent[ticket], answered[ticket] = pressed, time.time()

    def run(calls: int) -> None:
        before = streams.deliveries
        officer_thread = threading.Thread(target=press, args=(calls,), daemon=True)
        officer_thread.start()
        while officer_thread.is_alive():
            streams.pump(0.05)
        settle = time.monotonic() + args.settle
        expected = before + len(sent) * len(streams.connected)
        while time.monotonic() < settle and streams.deliveries < expected:
            streams.pump(0.2)

    # Warm-up calls, not counted: the first calls after thousands of boards connected at once
    # pay the full garbage collection of the objects those connections made (measured: the
    # first two calls' last boards at 300-480 ms, the later ones at 150-280 ms; with the
    # collector off, the first ones were like the rest).
    run(args.warmup)
    warmup = [
        _ms(max((now - sent[t] for _, now in _ticket_receipts(streams.chunks, t)), default=None))
        for t in sent
    ]
    sent.clear()
    answered.clear()
    run(args.calls)
    streams.close()
    expected = len(sent) * len(streams.connected)
    per_stream = streams.chunks
    connected = streams.connected

    from_call, from_event, seen = [], [], set()
    by_call: dict[bytes, list[float]] = {ticket: [] for ticket in sent}
    for index, chunks in enumerate(per_stream):
        for frame, now in _frames(chunks):
            ticket = TICKET.search(frame)
            if not ticket or ticket.group(1) not in sent or (index, ticket.group(1)) in seen:
                continue
            seen.add((index, ticket.group(1)))
            from_call.append(now - sent[ticket.group(1)])
            by_call[ticket.group(1)].append(now - sent[ticket.group(1)])
            occurred = OCCURRED.search(frame)
            if occurred:
                at = dt.datetime.fromisoformat(occurred.group(1).decode()).timestamp()
                from_event.append(now - at)
    call_seconds = [answered[t] - sent[t] for t in sent]
    return {
        "tool": "bench/display_stream.py",
        "streams": args.streams,
        "connected": len(connected),
        "gateway_open_streams": float(gauge.group(1)) if gauge else None,
        "display_keys": len(keys),
        "connect_seconds": round(connect_seconds, 1),
        "calls": len(sent),
        "rate_per_s": args.rate,
        "deliveries": len(from_call),
        "missing": expected - len(from_call),
        "p50_ms": _ms(percentile(from_call, 50)),
        "p99_ms": _ms(percentile(from_call, 99)),
        "max_ms": _ms(max(from_call, default=None)),
        "event_p50_ms": _ms(percentile(from_event, 50)),
        "event_p99_ms": _ms(percentile(from_event, 99)),
        "call_next_p50_ms": _ms(percentile(call_seconds, 50)),
        "warmup_calls_max_ms": warmup,
        # the last board reached, per call in calling order: a slow call or a slow fan-out?
        "per_call_max_ms": [_ms(max(v, default=None)) for v in by_call.values()],
    }


# ------------------------------------------------------------ the driver (plain process)


def _display_keys(floor, count: int) -> list[str]:
    keys = []
    for _ in range(count):
        answer = requests.post(
            f"{floor.url}/v1/agencies/{floor.agency_id}/api-keys",
            headers={"Authorization": f"Bearer {floor.admin_key}"},
            json={"role": "display", "label": "bench display stream"},
            timeout=30,
        )
        answer.raise_for_status()
        keys.append(answer.json()["key"])
    return keys


def measure(
    *,
    floor,
    streams: int = 5000,
    calls: int = 20,
    rate: float = 2.0,
    connect_timeout: float = 180.0,
    settle: float = 15.0,
) -> dict:
    """Open ``streams`` streams on ``floor``'s gateway, call ``calls`` tickets; the figures.

    ``floor`` is a :class:`bench.floor.Floor`; its ``DISP`` service (and counter) is used, or
    added. Returns ``p50_ms``/``p99_ms`` (call-next sent → received), ``event_p50_ms``/
    ``event_p99_ms`` (event occurred → received), ``connected``, ``deliveries``, ``missing``…
    """
    if "DISP" not in floor.services:
        floor.add_service("DISP", "D")
    raise_fd_limit()
    keys = _display_keys(floor, max(1, math.ceil(streams / STREAMS_PER_KEY)))
    command = [
        sys.executable,
        "-m",
        "bench.display_stream",
        "--client",
        "--url",
        floor.url,
        "--display-keys",
        ",".join(keys),
        "--officer-key",
        floor.officer_key,
        "--counter",
        floor.counters["DISP"][0],
        "--service",
        floor.services["DISP"],
        "--streams",
        str(streams),
        "--calls",
        str(calls),
        "--rate",
        str(rate),
        "--connect-timeout",
        str(connect_timeout),
        "--settle",
        str(settle),
    ]
    out = subprocess.run(
        command,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=connect_timeout + calls / rate + settle + 300,
    )
    lines = [line for line in out.stdout.splitlines() if line.startswith("{")]
    if out.returncode != 0 or not lines:
        return {"skipped": f"display stream client failed: {out.stderr[-500:]}"}
    return json.loads(lines[-1])


def _start_mall(backend: str, log_dir: Path):
    from tests.support import infra
    from tests.support.mall import SERVICES, Mall

    infra.require_rabbitmq()
    vhost = infra.create_vhost()
    if backend == "postgres":
        urls = {name: infra.create_database(f"mpp_bench_{name}") for name in SERVICES}
    else:
        urls = {name: f"sqlite:///{log_dir}/{name}.db" for name in SERVICES}
    mall = Mall(
        infra.uri_for_vhost(vhost),
        urls,
        log_dir,
        {"RATE_LIMIT_PER_MINUTE": "1000000", "RATE_LIMIT_PUBLIC_PER_MINUTE": "1000000"},
    )

    def cleanup() -> None:
        mall.stop()
        if vhost:
            infra.delete_vhost(vhost)
        for url in urls.values():
            if url.startswith("postgresql"):
                infra.drop_database(url)

    try:
        mall.start()
    except Exception:
        cleanup()
        raise
    return mall, cleanup


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--streams", type=int, default=5000)
    parser.add_argument("--calls", type=int, default=20)
    parser.add_argument("--rate", type=float, default=2.0, help="calls per second")
    parser.add_argument("--connect-timeout", type=float, default=180.0)
    parser.add_argument("--settle", type=float, default=15.0)
    parser.add_argument("--warmup", type=int, default=2, help="calls first, not counted")
    parser.add_argument("--backend", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--url", help="an already running mall's gateway (its mall admin key)")
    # the client process's own arguments (set by measure())
    parser.add_argument("--client", action="store_true", help=argparse.SUPPRESS)
    for name in ("display-keys", "officer-key", "counter", "service"):
        parser.add_argument(f"--{name}", help=argparse.SUPPRESS)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.client:
        print(json.dumps(run_client(args)), flush=True)
        return 0
    from bench.floor import open_floor

    limit = raise_fd_limit()
    load_average = list(os.getloadavg())
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    RESULTS.mkdir(parents=True, exist_ok=True)
    cleanup = None
    if args.url:
        url = args.url.rstrip("/")
    else:
        log_dir = RESULTS / f"{stamp}-display-stream-logs"
        log_dir.mkdir(parents=True, exist_ok=True)
        mall, cleanup = _start_mall(args.backend, log_dir)
        url = mall.url
    try:
        floor = open_floor(url)
        figures = measure(
            floor=floor,
            streams=args.streams,
            calls=args.calls,
            rate=args.rate,
            connect_timeout=args.connect_timeout,
            settle=args.settle,
        )
    finally:
        if cleanup:
            cleanup()
    report = {
        "started": stamp,
        "fd_limit": limit,
        "backend": None if args.url else args.backend,
        "load_average_at_start": load_average,
        **figures,
    }
    path = RESULTS / f"{stamp}-display-stream.json"
    path.write_text(json.dumps(report, indent=2) + "\n")
    for name, value in report.items():
        print(f"{name:>22}: {value}")
    print(f"{'written':>22}: {path.relative_to(ROOT)}")
    return 0 if "p99_ms" in figures and figures.get("connected") == args.streams else 1


if __name__ == "__main__":
    sys.exit(main())
