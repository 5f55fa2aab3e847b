"""Faults under load: kill -9 each service in turn and reset the broker's connections, then prove
that nothing was lost or done twice.

Short profile (default, part of ``make test``): 16 citizens, each fault once. Long profile
(``make chaos``, ``CHAOS_PROFILE=long``): 120 citizens, three rounds of faults. The broker fault
closes every AMQP connection of the test's vhost through the management API — a real broker-side
disconnect for every service — on the shared RabbitMQ, which other tests use and which is never
restarted here (test_chaos_infrastructure.py restarts a private node).
"""

from __future__ import annotations

import pytest

from bench.floor import open_floor
from tests.chaos import chaos_citizens as sim
from tests.chaos.chaos_run import CHAOS_ENV, PROFILE, check_nothing_lost, run_journeys
from tests.support.mall import SERVICES

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]


@pytest.mark.timeout(PROFILE.deadline + 240)
def test_chaos_nothing_lost_or_doubled(mall_factory, vhost, amqp_uri):
    mall = mall_factory("postgres", extra_env=CHAOS_ENV)
    floor = open_floor(mall.url)
    floor.add_service("FREE", "F", fee_idr=0, counters=2)
    floor.add_service("PAID", "B", fee_idr=15000, counters=2)
    faults = [(name, lambda name=name: sim.kill_and_restart(mall, name)) for name in SERVICES]
    faults.append(("broker", lambda: sim.drop_broker_connections(vhost)))

    ledger, outages = run_journeys(floor, PROFILE, faults)

    assert outages[-1][0] == "broker" and outages[-1][1] > 0, "the broker fault closed nothing"
    problems = check_nothing_lost(mall, floor, ledger, PROFILE, vhost=vhost, amqp_uri=amqp_uri)
    assert not problems, "\n".join(problems)
