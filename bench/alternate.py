"""Journey CPU of this code against another checkout's, in alternating rounds on two live malls.

    .venv/bin/python -m bench.alternate --baseline DIR              # 10 rounds of 100 journeys
    .venv/bin/python -m bench.alternate --baseline DIR --rounds 2 --journeys 4   # a smoke run

``bench.levers --baseline`` runs each configuration once, minutes apart; on a shared 2-core
machine the same code has measured 52 to 104 ms per journey between such runs. Here both malls
(this checkout's and ``DIR``'s, each with its own RabbitMQ vhost and PostgreSQL databases) stay
up, and short batches of whole journeys (``bench/journey_cost.py``) alternate between them in
ABBA order, so a slow minute of the machine lands on both sides. The figure is the ratio of the
summed CPU per journey (this code / the baseline), with every round's own ratio to show the
spread, and the CPU per process on each side.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import time
from pathlib import Path

from bench import journey_cost
from bench.floor import open_floor
from bench.levers import UNLIMITED
from bench.run import RESULTS, ROOT, log, machine
from tests.support import infra
from tests.support.mall import SERVICES, Mall


class Side:
    """One live mall with a floor whose ``COST`` service serves the journeys."""

    def __init__(self, name: str, python: str, root: Path, log_dir: Path) -> None:
        self.name = name
        self.vhost = infra.create_vhost()
        self.urls = {s: infra.create_database(f"mpp_alt_{s}") for s in SERVICES}
        run_dir = log_dir / name
        run_dir.mkdir(parents=True, exist_ok=True)
        env = {"OUTBOX_POLL_SECONDS": "1", **UNLIMITED}
        self.mall = Mall(
            infra.uri_for_vhost(self.vhost), self.urls, run_dir, env, python=python, root=root
        )
        self.spent: dict[str, float] = {}
        self.phases: dict[str, float] = {}
        self.journeys = 0
        self.rounds: list[float] = []

    def start(self) -> None:
        self.mall.start()
        self.floor = open_floor(self.mall.url)
        self.floor.add_service("COST", "C", fee_idr=10000, counters=journey_cost.WORKERS)

    def pids(self) -> dict[str, list[int]]:
        pids: dict[str, list[int]] = {}
        for proc in self.mall.processes:
            pids.setdefault(proc.name, []).append(proc.process.pid)
        return pids

    def run(self, journeys: int) -> float:
        """``journeys`` whole journeys; adds their CPU to the side's sums, returns ms each."""
        cost = journey_cost.measure_journeys(self.floor, self.urls, self.pids, journeys)
        by_process = cost["journey"]["by_process"]
        for name, ms in by_process.items():
            self.spent[name] = self.spent.get(name, 0.0) + ms * journeys
        for phase in journey_cost.PHASES:
            self.phases[phase] = self.phases.get(phase, 0.0) + cost[phase]["cpu_ms"] * journeys
        self.journeys += journeys
        self.rounds.append(cost["journey"]["cpu_ms"])
        return cost["journey"]["cpu_ms"]

    def per_journey(self) -> dict:
        by_process = {n: round(ms / self.journeys, 2) for n, ms in sorted(self.spent.items())}
        phases = {n: round(ms / self.journeys, 2) for n, ms in self.phases.items()}
        return {
            "cpu_ms": round(sum(by_process.values()), 2),
            "by_process": by_process,
            "by_phase": phases,
        }

    def stop(self) -> None:
        try:
            self.mall.stop()
        finally:
            infra.delete_vhost(self.vhost)
            for url in self.urls.values():
                infra.drop_database(url)


def compare(current: Side, baseline: Side, rounds: int, journeys: int) -> dict:
    for side in (current, baseline):  # warm both: pools, prepared statements, caches
        side.run(max(4, journeys // 10))
        side.spent, side.phases, side.journeys, side.rounds = {}, {}, 0, []
    for round_no in range(rounds):
        order = (current, baseline) if round_no % 2 == 0 else (baseline, current)
        for side in order:
            ms = side.run(journeys)
            log(f"round {round_no + 1}: {side.name} {ms} ms per journey")
    ours, theirs = current.per_journey(), baseline.per_journey()
    return {
        "ratio": round(ours["cpu_ms"] / theirs["cpu_ms"], 3),
        "round_ratios": [
            round(a / b, 3) for a, b in zip(current.rounds, baseline.rounds, strict=True)
        ],
        "current": {**ours, "rounds": current.rounds},
        "baseline": {**theirs, "rounds": baseline.rounds},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", type=Path, required=True, help="a checkout with its .venv")
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--journeys", type=int, default=100, help="journeys per side per round")
    args = parser.parse_args(argv)
    root = args.baseline.resolve()
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    log_dir = RESULTS / f"{stamp}-alternate-logs"
    infra.require_rabbitmq()
    began = time.monotonic()
    current = Side("current", sys.executable, ROOT, log_dir)
    baseline = Side(f"baseline-{root.name}", str(root / ".venv/bin/python"), root, log_dir)
    try:
        current.start()
        baseline.start()
        results = compare(current, baseline, args.rounds, args.journeys)
    finally:
        for side in (current, baseline):
            side.stop()
    results.update(
        started_at=stamp,
        machine=machine(),
        baseline_dir=str(root),
        rounds=args.rounds,
        journeys_per_round=args.journeys,
        seconds=round(time.monotonic() - began, 1),
    )
    out = RESULTS / f"{stamp}-alternate.json"
    out.write_text(json.dumps(results, indent=2))
    ours, theirs = results["current"], results["baseline"]
    print(f"journey CPU: {ours['cpu_ms']} / {theirs['cpu_ms']} ms = {results['ratio']}")
    print(f"rounds: {results['round_ratios']}")
    for name in sorted(set(ours["by_process"]) | set(theirs["by_process"])):
        a, b = ours["by_process"].get(name, 0.0), theirs["by_process"].get(name, 0.0)
        print(f"  {name:<10} {a:>7} {b:>7}")
    for name in journey_cost.PHASES:
        a, b = ours["by_phase"][name], theirs["by_phase"][name]
        print(f"  {name:<10} {a:>7} {b:>7}  phase")
    print(f"\n{results['seconds']} s; JSON: {out.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
