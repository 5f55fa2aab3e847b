"""Load generators: ``wrk`` (C, closed loop) when installed, else Python threads; Python open loop.

Closed loop (throughput): N connections each send the next request as soon as the previous answer
arrived. Open loop (latency at a fixed rate): requests are *scheduled* at ``rate`` per second and
latency is measured from the scheduled instant, so a slow answer cannot hide the queueing it causes
(no coordinated omission). The ceiling and the mall are always measured by the same generator.
"""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field

import requests


@dataclass
class LoadResult:
    tool: str
    requests: int
    seconds: float
    rps: float
    p50_ms: float | None
    p99_ms: float | None
    non_2xx: int
    errors: int
    extra: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return asdict(self)


def percentile(values: Sequence[float], pct: float) -> float | None:
    """Nearest-rank percentile (no interpolation): the value below which ``pct`` % fall."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, math.ceil(pct / 100 * len(ordered)) - 1))
    return ordered[rank]


def have_wrk() -> bool:
    return shutil.which("wrk") is not None


_WRK_SCRIPT = """
local paths = {%(paths)s}
local body = %(body)s
local headers = {%(headers)s}
local i = 0
request = function()
  i = i + 1
  return wrk.format("%(method)s", paths[(i %% #paths) + 1], headers, body)
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "WRKJSON {\\"requests\\": %%d, \\"us\\": %%d, \\"p50\\": %%d, \\"p99\\": %%d, "
    .. "\\"status\\": %%d, \\"errors\\": %%d}\\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.status, e.connect + e.read + e.write + e.timeout))
end
"""


def _lua(value: str) -> str:
    return json.dumps(value)  # a JSON string literal is a valid Lua string literal here


def wrk_closed_loop(
    base_url: str,
    method: str,
    paths: Sequence[str],
    *,
    headers: dict | None = None,
    body: str | None = None,
    seconds: float = 10,
    connections: int = 20,
) -> LoadResult:
    script = _WRK_SCRIPT % {
        "paths": ", ".join(_lua(p) for p in paths),
        "body": _lua(body) if body is not None else "nil",
        "headers": ", ".join(f"[{_lua(k)}] = {_lua(v)}" for k, v in (headers or {}).items()),
        "method": method,
    }
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as handle:
        handle.write(script)
    out = subprocess.run(
        [
            "wrk",
            "-t1",
            f"-c{connections}",
            f"-d{max(1, int(round(seconds)))}s",
            "--timeout",
            "10s",
            "-s",
            handle.name,
            base_url,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    line = next(ln for ln in out.splitlines() if ln.startswith("WRKJSON "))
    data = json.loads(line.removeprefix("WRKJSON "))
    secs = data["us"] / 1e6
    return LoadResult(
        tool="wrk",
        requests=data["requests"],
        seconds=round(secs, 2),
        rps=round(data["requests"] / secs, 1),
        p50_ms=round(data["p50"] / 1000, 2),
        p99_ms=round(data["p99"] / 1000, 2),
        non_2xx=data["status"],
        errors=data["errors"],
    )


def python_closed_loop(
    base_url: str,
    method: str,
    paths: Sequence[str],
    *,
    headers: dict | None = None,
    body: str | None = None,
    seconds: float = 10,
    connections: int = 20,
) -> LoadResult:
    latencies: list[float] = []
    counts = {"non_2xx": 0, "errors": 0}
    lock = threading.Lock()
    counter = iter(range(10**12))
    deadline = time.monotonic() + seconds

    def worker() -> None:
        session = requests.Session()
        while time.monotonic() < deadline:
            path = paths[next(counter) % len(paths)]
            started = time.monotonic()
            try:
                answer = session.request(
                    method, base_url + path, data=body, headers=headers, timeout=10
                )
                ok = 200 <= answer.status_code < 300
            except requests.RequestException:
                with lock:
                    counts["errors"] += 1
                continue
            elapsed = time.monotonic() - started
            with lock:
                latencies.append(elapsed)
                counts["non_2xx"] += not ok

    began = time.monotonic()
    threads = [threading.Thread(target=worker) for _ in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    secs = time.monotonic() - began
    return LoadResult(
        tool="python-threads",
        requests=len(latencies),
        seconds=round(secs, 2),
        rps=round(len(latencies) / secs, 1),
        p50_ms=_ms(percentile(latencies, 50)),
        p99_ms=_ms(percentile(latencies, 99)),
        **counts,
    )


def closed_loop(*args, use_wrk: bool | None = None, **kwargs) -> LoadResult:
    if use_wrk is None:
        use_wrk = have_wrk()
    return (wrk_closed_loop if use_wrk else python_closed_loop)(*args, **kwargs)


def open_loop(
    send: Callable[[requests.Session, int], bool],
    *,
    rate: float,
    seconds: float,
    pool: int = 32,
    progress: Callable[[], None] | None = None,
) -> LoadResult:
    """Call ``send(session, i)`` at ``rate``/s; latency counts from the scheduled instant."""
    local = threading.local()
    latencies: list[float] = []
    counts = {"non_2xx": 0, "errors": 0}
    lock = threading.Lock()
    total = int(rate * seconds)

    def task(i: int, scheduled: float) -> None:
        if not hasattr(local, "session"):
            local.session = requests.Session()
        try:
            ok = send(local.session, i)
        except requests.RequestException:
            ok = None
        elapsed = time.monotonic() - scheduled
        with lock:
            if ok is None:
                counts["errors"] += 1
            else:
                latencies.append(elapsed)
                counts["non_2xx"] += not ok
        if progress:
            progress()

    began = time.monotonic()
    with ThreadPoolExecutor(max_workers=pool) as executor:
        for i in range(total):
            scheduled = began + i / rate
            delay = scheduled - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            executor.submit(task, i, scheduled)
    secs = time.monotonic() - began
    return LoadResult(
        tool="python-open-loop",
        requests=len(latencies),
        seconds=round(secs, 2),
        rps=round(len(latencies) / secs, 1),
        p50_ms=_ms(percentile(latencies, 50)),
        p99_ms=_ms(percentile(latencies, 99)),
        extra={"target_rate": rate},
        **counts,
    )


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 2)
