"""CPU per event of a batching handler against the same handler one event at a time.

    .venv/bin/python -m bench.event_batching [--events 1000] [--rounds 2]

Rating's ``handle_ticket_completed`` (a batch handler, mpp_chassis.batching) in this process, on
a fresh RabbitMQ vhost and PostgreSQL database: ``--events`` completions wait in its queue, then
the container starts and applies them; ``EVENT_BATCH_SIZE=1`` is today's one-by-one path, the
default (50, bounded by the prefetch, ``max_workers`` 20) applies the deliveries at hand in one
transaction. The figure is the CPU of this process (the service, from the container's start to
the last invitation stored; ``time.process_time``) per event, and beside it PostgreSQL's and
RabbitMQ's (every process of theirs on the machine, bench/journey_cost.py: anything else using
them is counted too). A backlog is where batches form; a quiet service sees batches of one.
"""

from __future__ import annotations

import eventlet

eventlet.monkey_patch()

import argparse  # noqa: E402
import time  # noqa: E402
from datetime import UTC, datetime  # noqa: E402

import sqlalchemy as sa  # noqa: E402
from kombu import Connection, Producer  # noqa: E402
from nameko.containers import ServiceContainer  # noqa: E402

from bench.journey_cost import infrastructure_seconds  # noqa: E402
from mpp_chassis.migrate import upgrade  # noqa: E402
from mpp_chassis.outbox import event_exchange  # noqa: E402
from mpp_contracts.envelope import make_envelope  # noqa: E402
from tests.support import infra  # noqa: E402
from tests.support.mall import free_port  # noqa: E402


def completion(n: int) -> dict:
    now = datetime.now(UTC)
    payload = {
        "ticket_id": f"t-{n}",
        "journey_id": f"t-{n}",
        "number": f"A-{n:03d}",
        "agency_id": "ag-1",
        "service_id": "svc-1",
        "service_code": "KTP",
        "issued_at": now,
        "counter_id": "counter-1",
        "officer_id": "officer-1",
        "fee_idr": 0,
        "called_at": now,
        "started_at": now,
        "completed_at": now,
        "waiting_seconds": 60,
        "serving_seconds": 120,
    }
    return make_envelope("ticket_completed", payload, source="queue", mall="mpp-bench")


def measure(batch_size: int, events: int) -> dict:
    from mpp_rating.adapters.tables import invitations
    from mpp_rating.service import RatingService

    vhost = infra.create_vhost()
    amqp_uri = infra.uri_for_vhost(vhost)
    url = infra.create_database("mpp_bench_batch")
    upgrade("rating", url)
    engine = sa.create_engine(url)
    config = {
        "AMQP_URI": amqp_uri,
        "DB_URL": url,
        "WEB_SERVER_ADDRESS": f"127.0.0.1:{free_port()}",
        "MALL_ID": "mpp-bench",
        "EVENT_BATCH_SIZE": batch_size,
        "max_workers": 20,
        "LOGGING": {"version": 1, "disable_existing_loggers": False, "root": {"level": "WARNING"}},
    }
    try:
        declaring = ServiceContainer(RatingService, config)
        declaring.start()  # declares its queues
        declaring.stop()
        with Connection(amqp_uri) as conn:
            producer = Producer(conn.channel())
            for n in range(events):
                producer.publish(
                    completion(n),
                    exchange=event_exchange("queue"),
                    routing_key="ticket_completed",
                    delivery_mode=2,
                )
        count = sa.select(sa.func.count()).select_from(invitations)
        container = ServiceContainer(RatingService, config)
        workers_before = _batches()
        infra_before = infrastructure_seconds()
        own_before = time.process_time()
        started = time.monotonic()
        container.start()
        while True:
            with engine.connect() as conn:
                if conn.execute(count).scalar_one() >= events:
                    break
            eventlet.sleep(0.1)
        seconds = time.monotonic() - started
        workers = _batches()
        own = time.process_time() - own_before
        infra_after = infrastructure_seconds()
        container.stop()
    finally:
        engine.dispose()
        infra.drop_database(url)
        infra.delete_vhost(vhost)
    per_event = {
        "rating": 1000 * own / events,
        **{
            name: 1000 * (infra_after[name] - infra_before[name]) / events
            for name in ("postgresql", "rabbitmq")
        },
    }
    return {
        "batch_size": batch_size,
        "seconds": seconds,
        "ms_per_event": per_event,
        "workers": workers - workers_before,
    }


def _batches() -> float:
    """How many workers rating's ticket_completed handler has applied events in so far."""
    from mpp_chassis.metrics import EVENT_BATCH_SIZE

    for metric in EVENT_BATCH_SIZE.collect():
        for sample in metric.samples:
            if (
                sample.name.endswith("_count")
                and sample.labels.get("service") == "rating"
                and sample.labels.get("event_type") == "ticket_completed"
            ):
                return sample.value
    return 0.0


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args(argv)
    for round_ in range(args.rounds):
        for batch_size in (1, 50):
            result = measure(batch_size, args.events)
            cpu = result["ms_per_event"]
            print(
                f"round {round_ + 1}  EVENT_BATCH_SIZE={batch_size:<3} "
                f"{args.events} events in {result['seconds']:.1f} s, "
                f"{result['workers']:.0f} workers  CPU per event: "
                f"rating {cpu['rating']:.2f} ms, postgresql {cpu['postgresql']:.2f} ms, "
                f"rabbitmq {cpu['rabbitmq']:.2f} ms",
                flush=True,
            )


if __name__ == "__main__":
    main()
