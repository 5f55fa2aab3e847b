"""kill -9 around the outbox relay's fast path: a producer killed after its commit, before the
rows it handed to its relay were published, or after they were published and before they were
marked sent. The rows are in the table either way: another process's poll publishes them once
they are older than the hand-over grace (the second case again: consumers deduplicate)."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from mpp_chassis.engine import make_engine
from mpp_chassis.migrate import upgrade
from mpp_chassis.outbox import OutboxRelay
from mpp_contracts.events import CONSUMED
from tests.support.infra import wait_until
from tests.support.outbox import listen, outbox, received, unsent

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
WORKER = Path(__file__).with_name("outbox_kill_worker.py")


def killed_producer(url: str, amqp_uri: str, moment: str, *codes: str) -> None:
    done = subprocess.run(
        [sys.executable, str(WORKER), url, amqp_uri, moment, *codes],
        cwd=ROOT,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        timeout=60,
    )
    assert done.returncode == -signal.SIGKILL, done.stderr.decode()[-2000:]


@pytest.mark.parametrize("moment", ["committed", "published"])
def test_events_of_a_producer_killed_around_its_fast_path_are_published_by_the_poll(
    moment, db_url_factory, amqp_uri
):
    listen(amqp_uri)
    url = db_url_factory("queue")
    upgrade("queue", url)
    killed_producer(url, amqp_uri, moment, "K1", "K2")
    before = received(amqp_uri)
    assert before == ([] if moment == "committed" else ["K1", "K2"])
    assert unsent(url) == 2, "committed, never marked sent"

    engine = make_engine(url)
    relay = OutboxRelay(
        engine=engine,
        outbox=outbox,
        amqp_uri=amqp_uri,
        wakeup=threading.Event(),
        must_route=CONSUMED,
        handover_grace_seconds=0.5,  # a successor process: the rows are not its own
    )
    try:
        published: list[int] = []  # per poll round: the grace may split the two rows
        wait_until(
            lambda: published.append(relay.publish_pending()) or sum(published) == 2,
            message="published by the poll",
        )
        assert received(amqp_uri) == ["K1", "K2"]
        assert unsent(url) == 0
    finally:
        relay.stop()
        engine.dispose()
