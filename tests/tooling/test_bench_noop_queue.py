"""The bench's no-op queue answers take-ticket with a real virtual ticket's shape: its figure is
the gateway's share of a take only if the gateway handles an answer of the same keys and size."""

from __future__ import annotations

import json

from bench.noop_queue import virtual_ticket
from mpp_chassis.migrate import upgrade
from mpp_queue import usecases
from tests.queue.usecases.conftest import Floor, setup_agency


def shape(value):
    if isinstance(value, dict):
        return {key: shape(item) for key, item in value.items()}
    return None


def test_the_noop_ticket_has_the_real_tickets_keys_and_about_its_size(db_url_factory):
    url = db_url_factory("queue")
    upgrade("queue", url)
    floor = Floor(url, usecases.Settings(nik_hash_key="bench"))
    try:
        _, svc = setup_agency(floor)
        real = floor("take_ticket", {"service_id": svc["id"]}, settings=True)
    finally:
        floor.engine.dispose()
    noop = virtual_ticket(svc["id"], 1)
    assert shape(noop) == shape(real)
    assert noop["status"] == real["status"] == "waiting"
    assert abs(len(json.dumps(noop)) - len(json.dumps(real))) < 0.1 * len(json.dumps(real))
