"""Called → received on the SSE display stream with many open streams (the runner's own probe).

Used by ``bench/run.py`` when the gateway's ``bench/display_stream.py`` is absent. Runs in its own
process under eventlet (green sockets, so thousands of streams cost little): opens ``--streams``
connections to ``GET /v1/display/stream`` with a display key, waits until every one has said
``: connected``, then calls ``--calls`` tickets at ``--rate`` per second and records, per stream,
when the frame naming each ticket arrived. Latency = frame received − call-next *sent* (what the
officer perceives: button pressed → board shows it). Prints one JSON line.

    python -m bench.display_probe --url URL --display-key K --officer-key K --counter ID \
        --service ID --streams 5000 --calls 20 --rate 2
"""

import eventlet

eventlet.monkey_patch()

import argparse  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import re  # noqa: E402
import socket  # noqa: E402
import time  # noqa: E402
from urllib.parse import urlparse  # noqa: E402

import requests  # noqa: E402

TICKET = re.compile(rb'"ticket_id":"([^"]+)"')


def open_stream(host, port, key, received: list, connected: list, stop, opening) -> None:
    """One stream; holds an ``opening`` slot until the gateway says it is connected."""
    opening.acquire()
    try:
        sock = socket.create_connection((host, port), timeout=60)
    except OSError:
        opening.release()
        raise
    sock.sendall(
        (
            f"GET /v1/display/stream HTTP/1.1\r\nHost: {host}:{port}\r\n"
            f"Authorization: Bearer {key}\r\nAccept: text/event-stream\r\n\r\n"
        ).encode()
    )
    sock.settimeout(None)
    said_connected = False
    tail = b""
    try:
        while not stop.ready():
            chunk = sock.recv(65536)
            now = time.monotonic()
            if not chunk:
                return
            if not said_connected and b": connected" in chunk:
                said_connected = True
                connected.append(now)
                opening.release()
            data = tail + chunk
            received.extend((m.decode(), now) for m in TICKET.findall(data))
            tail = data[-200:] if not data.endswith(b"\n\n") else b""
    finally:
        if not said_connected:
            opening.release()
        sock.close()


def percentile(values: list[float], pct: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(len(ordered) * pct / 100) - 1)]


def main() -> None:
    parser = argparse.ArgumentParser()
    for name in ("url", "display-key", "officer-key", "counter", "service"):
        parser.add_argument(f"--{name}", required=True)
    parser.add_argument("--streams", type=int, default=100)
    parser.add_argument("--calls", type=int, default=10)
    parser.add_argument("--rate", type=float, default=2.0)
    args = parser.parse_args()
    parsed = urlparse(args.url)
    session = requests.Session()
    for _ in range(args.calls):
        session.post(
            f"{args.url}/v1/tickets", json={"service_id": args.service}, timeout=30
        ).raise_for_status()

    received: list = []
    connected: list = []
    stop = eventlet.event.Event()
    pool = eventlet.GreenPool(args.streams + 10)
    opening = eventlet.semaphore.Semaphore(200)  # connects in flight at once

    def one() -> None:
        open_stream(
            parsed.hostname, parsed.port, args.display_key, received, connected, stop, opening
        )

    began = time.monotonic()
    for _ in range(args.streams):
        pool.spawn_n(one)
    deadline = time.monotonic() + 120
    while len(connected) < args.streams and time.monotonic() < deadline:
        eventlet.sleep(0.2)
    connect_seconds = time.monotonic() - began

    sent: dict[str, float] = {}
    for _ in range(args.calls):
        due = time.monotonic()
        answer = session.post(
            f"{args.url}/v1/counters/{args.counter}/call-next",
            headers={"Authorization": f"Bearer {args.officer_key}"},
            timeout=30,
        )
        if answer.status_code == 200:
            sent[answer.json()["id"]] = due
        eventlet.sleep(max(0.0, due + 1 / args.rate - time.monotonic()))
    settle = time.monotonic() + 10
    while time.monotonic() < settle and len(received) < len(sent) * len(connected):
        eventlet.sleep(0.2)
    stop.send(True)
    latencies = [at - sent[t] for t, at in received if t in sent]
    expected = len(sent) * len(connected)
    print(
        json.dumps(
            {
                "tool": "bench/display_probe.py",
                "streams": args.streams,
                "connected": len(connected),
                "connect_seconds": round(connect_seconds, 1),
                "calls": len(sent),
                "deliveries": len(latencies),
                "missing": expected - len(latencies),
                "p50_ms": _ms(percentile(latencies, 50)),
                "p99_ms": _ms(percentile(latencies, 99)),
            }
        ),
        flush=True,
    )


def _ms(value: float | None) -> float | None:
    return None if value is None else round(value * 1000, 2)


if __name__ == "__main__":
    main()
