"""Issue 20's levers on and off, side by side in one run: what each one is worth.

    make bench-levers                                   # every configuration, ~2 min each
    .venv/bin/python -m bench.levers --quick            # seconds each, to check the machinery
    .venv/bin/python -m bench.levers --baseline DIR     # also DIR's code (an older checkout
                                                        # with its own .venv), run the same way

The framework's ceiling (``bench/ceiling.py``: HTTP in, one RPC) is measured first. Then, for
each configuration, a fresh mall (its own RabbitMQ vhost and PostgreSQL databases) runs the same
three measurements as ``make bench``: take-ticket in a closed loop (its ratio to the ceiling),
completed → rating token at 100 tickets/s (p99), and the CPU of whole citizen journeys summed
over every process (``bench/journey_cost.py``; in ceiling hops measured in the same step). The
levers are switched by their settings: ``GATEWAY_TAKE_BATCH_MS=0`` (one RPC per take-ticket,
docs/decisions/0014), ``GROUP_COMMIT_MS=0`` (no group commit in the queue, docs/decisions/0011)
and ``EVENT_BATCH_SIZE=1`` (events one by one, docs/decisions/0005). With
``--baseline`` the code of another checkout (e.g. the commit before issue 20) runs the same
steps, on its own interpreter and config files. ``--rounds`` repeats the whole cycle, so the
spread between rounds shows the machine's own noise. Figures compare within one run only.
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
from bench.run import (
    RESULTS,
    ROOT,
    log,
    machine,
    measure_ceiling,
    measure_cost,
    measure_paths,
    measure_token,
)
from tests.support import infra
from tests.support.mall import SERVICES, Mall

UNLIMITED = {"RATE_LIMIT_PER_MINUTE": "100000000", "RATE_LIMIT_PUBLIC_PER_MINUTE": "100000000"}
OFF = {
    "gateway batching off": {"GATEWAY_TAKE_BATCH_MS": "0"},
    "group commit off": {"GROUP_COMMIT_MS": "0"},
    "event batching off": {"EVENT_BATCH_SIZE": "1"},
}
CONFIGURATIONS = {
    "all levers": {},
    **OFF,
    "all off": {name: value for env in OFF.values() for name, value in env.items()},
}
PROFILES = {
    "full": dict(seconds=15, connections=20, rate=100, token_seconds=10, journeys=200),
    "quick": dict(seconds=1, connections=10, rate=20, token_seconds=1, journeys=4),
}


def measure_configuration(
    name: str, env: dict, profile: dict, log_dir: Path, *, python: str, root: Path
) -> dict:
    """One configuration on a fresh mall: take-ticket, completed → token, journey CPU."""
    vhost = infra.create_vhost()
    amqp_uri = infra.uri_for_vhost(vhost)
    urls = {service: infra.create_database(f"mpp_levers_{service}") for service in SERVICES}
    run_dir = log_dir / name.replace(" ", "-")
    run_dir.mkdir(parents=True, exist_ok=True)
    mall = Mall(
        amqp_uri,
        urls,
        run_dir,
        {"OUTBOX_POLL_SECONDS": "1", **UNLIMITED, **env},
        python=python,
        root=root,
    )
    try:
        mall.start()
        floor = open_floor(mall.url)
        floor.add_service("THRU", "T", counters=20)
        floor.add_service("RATE", "R", counters=4)
        floor.add_service("COST", "C", fee_idr=10000, counters=journey_cost.WORKERS)
        log(f"{name}: take-ticket, closed loop")
        take = measure_paths(floor, profile["seconds"], profile["connections"])["take_ticket"]
        log(f"{name}: completed → rating token at {profile['rate']}/s")
        token = measure_token(floor, amqp_uri, profile["rate"], profile["token_seconds"])
        log(f"{name}: CPU of {profile['journeys']} whole journeys")
        cost = measure_cost(mall, floor, amqp_uri, run_dir, profile["journeys"])
        return {"env": env, "take_ticket": take, "token": token, "cost": cost}
    finally:
        mall.stop()
        infra.delete_vhost(vhost)
        for url in urls.values():
            infra.drop_database(url)


def table(results: dict) -> str:
    ceiling = results["ceiling"]["rps"]
    head = ("configuration", "take/ceiling", "token p99 ms", "journey ms (hops)", "take")
    head += ("complete",)
    rows = [head]
    for round_no, configurations in enumerate(results["rounds"], 1):
        for name, r in configurations.items():
            cost = r["cost"]
            rows.append(
                (
                    f"{round_no}: {name}",
                    f"{r['take_ticket']['rps'] / ceiling:.2f}",
                    f"{r['token']['p99_ms']}",
                    f"{cost['journey']['cpu_ms']} ({cost['journey']['hops']})",
                    f"{cost['take']['cpu_ms']} ({cost['take']['hops']})",
                    f"{cost['complete']['cpu_ms']} ({cost['complete']['hops']})",
                )
            )
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(head))]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)) for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return f"ceiling {ceiling} req/s\n" + "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="seconds per part (a smoke run)")
    parser.add_argument("--rounds", type=int, default=1, help="repeat every configuration")
    parser.add_argument(
        "--only", nargs="*", choices=list(CONFIGURATIONS), default=None, help="configurations"
    )
    parser.add_argument(
        "--baseline",
        type=Path,
        default=None,
        help="another checkout (with its .venv) whose code runs the same steps",
    )
    args = parser.parse_args(argv)
    profile = PROFILES["quick" if args.quick else "full"]
    names = args.only or list(CONFIGURATIONS)
    runs = [(name, CONFIGURATIONS[name], sys.executable, ROOT) for name in names]
    if args.baseline:
        root = args.baseline.resolve()
        runs.insert(0, (f"baseline {root.name}", {}, str(root / ".venv/bin/python"), root))
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    log_dir = RESULTS / f"{stamp}-levers-logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    infra.require_rabbitmq()
    began = time.monotonic()
    results: dict = {"started_at": stamp, "machine": machine(), "settings": profile, "rounds": []}
    vhost = infra.create_vhost()
    try:
        log("ceiling: http → one RPC")
        results["ceiling"] = measure_ceiling(
            infra.uri_for_vhost(vhost), log_dir, profile["seconds"], profile["connections"]
        )
    finally:
        infra.delete_vhost(vhost)
    for _ in range(args.rounds):
        results["rounds"].append(
            {
                name: measure_configuration(name, env, profile, log_dir, python=python, root=root)
                for name, env, python, root in runs
            }
        )
    results["seconds"] = round(time.monotonic() - began, 1)
    out = RESULTS / f"{stamp}-levers.json"
    out.write_text(json.dumps(results, indent=2, default=str))
    print(table(results))
    print(f"\n{results['seconds']} s; JSON: {out.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
