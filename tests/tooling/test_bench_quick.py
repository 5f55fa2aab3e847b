"""`bench.run --quick` (the README's smoke run of the benchmark machinery) runs end to end: the
ceiling, take-ticket and call-next through a real mall, and the no-op queue in its place, each
answered without errors; every call seen on every open display stream; whole journeys' CPU read
from every process; the table printed and the JSON written."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.e2e


def test_the_quick_benchmark_measures_every_closed_loop_without_errors():
    run = subprocess.run(
        [
            *(sys.executable, "-m", "bench.run", "--quick"),
            *("--only", "ceiling", "paths", "display", "web", "cost", "noop"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    found = re.search(r"JSON: (\S+\.json)", run.stdout)
    assert found, run.stdout[-2000:]
    results = json.loads((ROOT / found.group(1)).read_text())
    measured = [
        results["ceiling"],
        results["closed_loop"]["take_ticket"],
        results["closed_loop"]["call_next"],
        results["noop"],
    ]
    for part in measured:
        assert part["requests"] > 0 and part["rps"] > 0
        assert part["non_2xx"] == 0 and part["errors"] == 0, part
    figures = results["verdict"]["figures"]
    assert 0 < figures["take_ratio"] and 0 < figures["noop_ratio"]
    assert "take-ticket / ceiling" in run.stdout and "no-op queue / ceiling" in run.stdout
    # the boards' frames name a call by its number (no ids leave on a board): the tool matches
    # them so, and finds every call on every stream (before, it looked for ids and found none)
    display = results["display"]
    assert display["connected"] == display["streams"] > 0
    assert (
        display["missing"] == 0 and display["deliveries"] == display["calls"] * display["streams"]
    )
    assert figures["display_p99_ms"] > 0
    cost = results["cost"]
    assert cost["journeys"] > 0 and cost["ceiling_hop"]["cpu_ms"] > 0
    for service in ("queue", "payment", "rating", "gateway"):  # a journey crosses all four
        assert cost["journey"]["by_process"][service] > 0, cost["journey"]
    # the whole journey holds its take and its completion (its phases are summed)
    assert cost["journey"]["cpu_ms"] >= cost["take"]["cpu_ms"] + cost["complete"]["cpu_ms"]
    assert "CPU of a whole journey" in run.stdout
    if "skipped" not in results["web"]:  # chromium present (.ci/run installs it)
        assert 0 < figures["ticket_page_kb"] and 0 < figures["ticket_page_ms"]
