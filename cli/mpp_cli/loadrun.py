"""``mpp load``: an open-loop load through bench's generator (``bench.loadgen.open_loop``).

The generator lives with the benchmarks; ``mpp load`` needs a checkout of the repository (the
editable install ``make run`` makes), whose root holds ``bench/``."""

from __future__ import annotations

import sys
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from mpp_cli.client import Client, UsageError


def open_loop():
    try:
        from bench.loadgen import open_loop as generator
    except ImportError:
        root = Path(__file__).resolve().parents[2]
        if not (root / "bench" / "loadgen.py").exists():
            raise UsageError(
                "mpp load needs the repository's bench/ (run it from a checkout)"
            ) from None
        sys.path.insert(0, str(root))
        from bench.loadgen import open_loop as generator
    return generator


def run_load(client: Client, rate: float, duration: float, service: str | None, console: Console):
    if rate <= 0 or duration <= 0:
        raise UsageError("--rate and --duration must be positive")
    services = client.all("/v1/services")
    if service:
        services = [s for s in services if service in (s["code"], s["id"])]
    if not services:
        raise UsageError("no active service to take tickets for (mpp apply or mpp demo first)")
    url = f"{client.settings.url}/v1/tickets"
    body = {"service_id": services[0]["id"]}
    headers = dict(client.session.headers)
    generator = open_loop()

    def send(session, i: int) -> bool:
        return session.post(url, json=body, headers=headers, timeout=10).status_code < 300

    total = int(rate * duration)
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task(f"{services[0]['code']} at {rate:g}/s", total=total)
        return generator(send, rate=rate, seconds=duration, progress=lambda: progress.advance(task))
