"""CPU per transient RPC publish (a request, a reply): this checkout against an older one.

    flock /tmp/bench.lock .venv/bin/python -m bench.publish_cost [--publishes 5000] [--rounds 4]
        [--baseline 4f3e0a3]

One process, on a fresh RabbitMQ vhost: ``--publishes`` request-shaped messages (the gateway's
call to ``queue.take_ticket``: JSON payload, ``expiration``, ``reply_to``, correlation id,
nameko's context headers and ``nameko.deadline``) through ``TransientPublisher.publish``, then
as many reply-shaped ones through ``ReplyResponder.send_response`` (serialisation included), to
queues bound as ``rpc-queue`` and a caller's reply queue are. ``mpp_chassis.transient`` as it is
here is measured against the same module at ``--baseline`` (read with ``git show``), alternated
in every round (the order swapped each round); the figure is this process's CPU
(``time.process_time``, user + system) per publish, its median and range over the rounds.
"""

from __future__ import annotations

import eventlet

eventlet.monkey_patch()

import argparse  # noqa: E402
import os  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import types  # noqa: E402
import uuid  # noqa: E402
from datetime import UTC, datetime  # noqa: E402
from pathlib import Path  # noqa: E402

from kombu import Connection, Exchange, Queue  # noqa: E402

from mpp_chassis import transient  # noqa: E402
from mpp_chassis.run import prefer_py_amqp  # noqa: E402
from tests.support import infra  # noqa: E402

MODULE = "libs/chassis/mpp_chassis/transient.py"
RPC_EXCHANGE = Exchange("nameko-rpc", type="topic", durable=True)
REPLY_TO = f"rpc.reply-gateway-{uuid.uuid4()}"
# bounded, so the rounds do not pile messages up in the broker (it drops the oldest)
BOUND = {"x-max-length": 1000}


def module_at(revision: str) -> types.ModuleType:
    """``mpp_chassis.transient`` as it was at ``revision``."""
    root = Path(__file__).resolve().parent.parent
    source = subprocess.run(
        ["git", "show", f"{revision}:{MODULE}"], cwd=root, check=True, capture_output=True
    ).stdout
    module = types.ModuleType(f"transient_at_{revision}")
    exec(compile(source, f"{revision}:{MODULE}", "exec"), module.__dict__)  # noqa: S102
    return module


def request(module, amqp_uri: str) -> None:
    """As ``RequestMethodProxy`` publishes a call (a publisher per call, as nameko builds one)."""
    publisher = module.TransientPublisher(amqp_uri, serializer="json", expiration=5.0)
    correlation = str(uuid.uuid4())
    publisher.publish(
        {"args": [], "kwargs": {"service_id": "svc-ktp", "channel": "kiosk", "key": correlation}},
        exchange=RPC_EXCHANGE,
        routing_key="queue.take_ticket",
        mandatory=True,
        reply_to=REPLY_TO,
        correlation_id=correlation,
        extra_headers={
            "nameko.call_id_stack": [f"gateway.take_ticket.{correlation}"],
            "nameko.correlation_id": correlation,
            "nameko.deadline": time.time() + 5.0,
        },
    )


class _Request:
    """The delivered request a reply answers (what ``send_response`` reads of it)."""

    def __init__(self) -> None:
        self.properties = {
            "content_type": "application/json",
            "reply_to": REPLY_TO,
            "correlation_id": str(uuid.uuid4()),
        }


def reply(module, amqp_uri: str) -> None:
    """As ``DatabaseAwareRpc.handle_result`` answers a call (a responder per reply)."""
    responder = module.ReplyResponder(amqp_uri, RPC_EXCHANGE, "json", _Request())
    responder.send_response({"ticket_id": str(uuid.uuid4()), "number": "A-017", "ahead": 3}, None)


def cpu_per_publish(publish, module, amqp_uri: str, count: int) -> float:
    for _ in range(100):  # connections and pools in place before the clock starts
        publish(module, amqp_uri)
    started = time.process_time()
    for _ in range(count):
        publish(module, amqp_uri)
    return (time.process_time() - started) / count


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--publishes", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--baseline", default="4f3e0a3", help="git revision to compare with")
    args = parser.parse_args(argv)
    prefer_py_amqp()  # as the services run (mpp_chassis.run)
    variants = {f"before ({args.baseline})": module_at(args.baseline), "this checkout": transient}
    vhost = infra.create_vhost()
    amqp_uri = infra.uri_for_vhost(vhost)
    figures: dict[tuple[str, str], list[float]] = {}
    try:
        with Connection(amqp_uri) as conn:
            channel = conn.default_channel
            Queue("rpc-queue", RPC_EXCHANGE, routing_key="queue.*", queue_arguments=BOUND)(
                channel
            ).declare()
            Queue(REPLY_TO, RPC_EXCHANGE, routing_key=REPLY_TO, queue_arguments=BOUND)(
                channel
            ).declare()
        print(
            f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {platform.machine()}, "
            f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}"
        )
        for round_ in range(args.rounds):
            order = list(variants.items())
            if round_ % 2:
                order.reverse()
            for name, module in order:
                for shape, publish in (("request", request), ("reply", reply)):
                    seconds = cpu_per_publish(publish, module, amqp_uri, args.publishes)
                    figures.setdefault((shape, name), []).append(seconds)
                    print(f"round {round_ + 1}  {shape:7}  {name:22}  {seconds * 1e6:7.1f} µs")
    finally:
        infra.delete_vhost(vhost)
    print(f"\nCPU per publish over {args.rounds} rounds of {args.publishes} (median, range):")
    for shape in ("request", "reply"):
        medians = {}
        for name in variants:
            values = [v * 1e6 for v in figures[(shape, name)]]
            medians[name] = statistics.median(values)
            print(
                f"  {shape:7}  {name:22}  {medians[name]:6.1f} µs  "
                f"({min(values):.1f}–{max(values):.1f})"
            )
        before, after = medians.values()
        print(f"  {shape:7}  ratio                   {after / before:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
