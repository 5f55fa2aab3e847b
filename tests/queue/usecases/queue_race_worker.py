"""One process of the two-process race (run by test_queue_concurrency_pg.py, not collected).

    python queue_race_worker.py <db_url> issue <start_at> <service_id> <count>
    python queue_race_worker.py <db_url> call <start_at> <counter_id>...

Waits until ``start_at`` (epoch seconds) so both processes hit PostgreSQL at the same instant,
then issues tickets or calls with one thread per counter until the line is empty, and prints
what it got as one JSON line.
"""

from __future__ import annotations

import json
import sys
import threading
import time

from sqlalchemy.orm import sessionmaker

from mpp_chassis.db import UnitOfWork, make_engine
from mpp_contracts.errors import NotFound
from mpp_queue import usecases
from mpp_queue.adapters.tables import metadata

SETTINGS = usecases.Settings(nik_hash_key="race")
STAFF = {"role": "mall_admin", "agency_id": None, "key_id": "race-worker"}


def run(sessions, fn, *args):
    uow = UnitOfWork(
        sessions(),
        metadata.tables["outbox"],
        metadata.tables["processed_events"],
        source="queue",
        mall="race",
        context_data={},
        on_commit=lambda _rows: None,
    )
    try:
        result = fn(uow, *args)
        uow.commit()
        return result
    except Exception:
        uow.rollback()
        raise
    finally:
        uow.session.close()


def main(argv: list[str]) -> None:
    url, mode, start_at = argv[0], argv[1], float(argv[2])
    engine = make_engine(url)
    sessions = sessionmaker(bind=engine, expire_on_commit=False)
    results: list = []
    lock = threading.Lock()

    def issue(service_id: str, count: int) -> None:
        for _ in range(count):
            t = run(sessions, usecases.take_ticket, SETTINGS, {"service_id": service_id})
            with lock:
                results.append(t["number"])

    def call(counter_id: str) -> None:
        while True:
            try:
                t = run(sessions, usecases.call_next, SETTINGS, counter_id, STAFF)
            except NotFound:
                return
            with lock:
                results.append([counter_id, t["id"]])

    if mode == "issue":
        jobs = [(issue, (argv[3], int(argv[4]) // 4)) for _ in range(4)]
    else:
        jobs = [(call, (counter_id,)) for counter_id in argv[3:]]
    threads = [threading.Thread(target=fn, args=args) for fn, args in jobs]
    time.sleep(max(0.0, start_at - time.time()))
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print(json.dumps(results))


if __name__ == "__main__":
    main(sys.argv[1:])
