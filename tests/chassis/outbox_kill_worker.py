"""A producer killed with SIGKILL (run by test_chassis_outbox_crash.py, not collected).

    python outbox_kill_worker.py <db_url> <amqp_uri> committed|published <code>...

Commits one event per code through a unit of work whose commit hands the rows to an outbox
relay, then kills itself with SIGKILL: right after the commit (``committed``: the hand-over
never published) or after the relay's fast path published them and before it marked them sent
(``published``).
"""

from __future__ import annotations

import os
import signal
import sys
import threading

from sqlalchemy.orm import sessionmaker

from mpp_chassis.db import UnitOfWork, make_engine
from mpp_chassis.outbox import OutboxRelay
from mpp_queue.adapters.tables import metadata


def main(url: str, amqp_uri: str, moment: str, codes: list[str]) -> None:
    engine = make_engine(url)
    outbox = metadata.tables["outbox"]
    relay = OutboxRelay(engine=engine, outbox=outbox, amqp_uri=amqp_uri, wakeup=threading.Event())
    uow = UnitOfWork(
        sessionmaker(bind=engine)(),
        outbox,
        metadata.tables["processed_events"],
        source="queue",
        mall="mpp-test",
        context_data={},
        on_commit=relay.hand_over,
    )
    for code in codes:
        uow.add_event("agency_registered", {"agency_id": code, "code": code, "name": code})
    uow.commit()
    if moment == "published":
        assert relay.publish_handed() == len(codes)
    sys.stdout.flush()
    os.kill(os.getpid(), signal.SIGKILL)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:])
