"""`bench.levers --quick` (issue 20's levers on and off in one run) runs end to end: the ceiling,
then a fresh mall for the configuration asked, with its settings, measuring take-ticket, completed →
token and whole journeys' CPU without errors; the table printed and the JSON written."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.e2e


def test_the_levers_benchmark_measures_each_configuration_on_its_own_mall():
    run = subprocess.run(
        [sys.executable, "-m", "bench.levers", "--quick", "--only", "all off"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    found = re.search(r"JSON: (\S+\.json)", run.stdout)
    assert found, run.stdout[-2000:]
    results = json.loads((ROOT / found.group(1)).read_text())
    assert results["ceiling"]["rps"] > 0
    (configurations,) = results["rounds"]
    assert list(configurations) == ["all off"]  # one: each costs a mall of its own
    assert configurations["all off"]["env"] == {
        "GATEWAY_TAKE_BATCH_MS": "0",
        "GROUP_COMMIT_MS": "0",
        "EVENT_BATCH_SIZE": "1",
    }
    for name, measured in configurations.items():
        take = measured["take_ticket"]
        assert take["rps"] > 0 and take["non_2xx"] == 0 and take["errors"] == 0, (name, take)
        token = measured["token"]
        assert token["completed"] > 0 and token["missing"] == 0, (name, token)
        cost = measured["cost"]
        for service in ("queue", "payment", "rating", "gateway"):
            assert cost["journey"]["by_process"][service] > 0, (name, cost["journey"])
        assert cost["journey"]["hops"] > 0
        assert f"1: {name}" in run.stdout
