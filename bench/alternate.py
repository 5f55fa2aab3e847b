"""Journey CPU of this code against another checkout's, in alternating rounds on two live malls.

    .venv/bin/python -m bench.alternate --baseline DIR              # 10 rounds of 100 journeys
    .venv/bin/python -m bench.alternate --baseline DIR --baseline DIR2   # two older checkouts
    .venv/bin/python -m bench.alternate --baseline DIR --rounds 2 --journeys 4   # a smoke run

``bench.levers --baseline`` runs each configuration once, minutes apart; on a shared 2-core
machine the same code has measured 52 to 104 ms per journey between such runs. Here both malls
(this checkout's and ``DIR``'s, each with its own RabbitMQ vhost and PostgreSQL databases) stay
up, and short batches of whole journeys (``bench/journey_cost.py``) alternate between them in
ABBA order, so a slow minute of the machine lands on both sides (with two baselines, ABCCBA).
The figure is the ratio of the summed CPU per journey (this code / each baseline), with every
round's own ratio to show the spread, and the CPU per process and per phase on each side.
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
        return journey_cost.mall_pids(self.mall)

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


def compare(current: Side, baselines: list[Side], rounds: int, journeys: int) -> dict:
    """Warm every side, then ``rounds`` rounds of ``journeys`` each, the sides' order reversed
    every other round (ABBA; ABCCBA with two baselines). Ratios are this code's to each
    baseline's."""
    sides = [current, *baselines]
    for side in sides:  # warm them all: pools, prepared statements, caches
        side.run(max(4, journeys // 10))
        side.spent, side.phases, side.journeys, side.rounds = {}, {}, 0, []
    for round_no in range(rounds):
        for side in sides if round_no % 2 == 0 else reversed(sides):
            ms = side.run(journeys)
            log(f"round {round_no + 1}: {side.name} {ms} ms per journey")
    ours = current.per_journey()
    compared = {}
    for baseline in baselines:
        theirs = baseline.per_journey()
        compared[baseline.name] = {
            "ratio": round(ours["cpu_ms"] / theirs["cpu_ms"], 3),
            "round_ratios": [
                round(a / b, 3) for a, b in zip(current.rounds, baseline.rounds, strict=True)
            ],
            **theirs,
            "rounds": baseline.rounds,
        }
    return {"current": {**ours, "rounds": current.rounds}, "baselines": compared}


def report(results: dict) -> str:
    ours, theirs = results["current"], results["baselines"]
    names = list(theirs)
    lines = [
        f"journey CPU: {ours['cpu_ms']} ms; "
        + "; ".join(f"/ {t['cpu_ms']} ms ({n}) = {t['ratio']}" for n, t in theirs.items())
    ]
    lines += [f"rounds against {n}: {t['round_ratios']}" for n, t in theirs.items()]
    lines.append(f"  {'':<10} {'current':>9}" + "".join(f" {n[-9:]:>9}" for n in names))
    for kind in ("by_process", "by_phase"):
        for name in ours[kind]:
            cells = "".join(f" {t[kind].get(name, 0.0):>9}" for t in theirs.values())
            lines.append(f"  {name:<10} {ours[kind][name]:>9}{cells}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--baseline",
        type=Path,
        action="append",
        required=True,
        help="a checkout with its .venv (repeat it: every baseline alternates in the same run)",
    )
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--journeys", type=int, default=100, help="journeys per side per round")
    args = parser.parse_args(argv)
    roots = [path.resolve() for path in args.baseline]
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    log_dir = RESULTS / f"{stamp}-alternate-logs"
    infra.require_rabbitmq()
    began = time.monotonic()
    current = Side("current", sys.executable, ROOT, log_dir)
    sides = [current]
    try:
        for root in roots:
            sides.append(
                Side(f"baseline-{root.name}", str(root / ".venv/bin/python"), root, log_dir)
            )
        for side in sides:
            side.start()
        results = compare(current, sides[1:], args.rounds, args.journeys)
    finally:
        for side in sides:
            side.stop()
    results.update(
        started_at=stamp,
        machine=machine(),
        baseline_dirs=[str(root) for root in roots],
        rounds=args.rounds,
        journeys_per_round=args.journeys,
        seconds=round(time.monotonic() - began, 1),
    )
    out = RESULTS / f"{stamp}-alternate.json"
    out.write_text(json.dumps(results, indent=2))
    print(report(results))
    print(f"\n{results['seconds']} s; JSON: {out.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
