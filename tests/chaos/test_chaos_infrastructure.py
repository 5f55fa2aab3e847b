"""The faults a mall meets from what it stands on, under load, and nothing lost or done twice:
PostgreSQL restarted (``pg_ctlcluster … restart``), Redis stopped and started, the payment
provider timing out and answering 5xx for a while, RabbitMQ restarted, and one of the two
processes of every service killed. No human acts: every process reconnects by itself, and the
checks (tests/chaos/chaos_run.py) read the databases and the broker afterwards.

The servers are the test's own (tests/support/private_infra.py), never the machine's shared
ones. Short profile (``make test``): 16 citizens, each fault once, outages of 4 s. Long profile
(``make chaos``): 120 citizens, three rounds, outages of a minute.
"""

from __future__ import annotations

import signal
import time

import pytest

from bench.floor import open_floor
from tests.chaos import chaos_citizens as sim
from tests.chaos.chaos_run import CHAOS_ENV, PROFILE, check_nothing_lost, run_journeys
from tests.support import fake_provider
from tests.support.fake_provider import FakeProvider
from tests.support.mall import SERVICES, Mall
from tests.support.private_infra import PrivatePostgres, PrivateRabbit, PrivateRedis

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]


@pytest.fixture
def postgres():
    server = PrivatePostgres().create()
    yield server
    server.drop()


@pytest.fixture
def redis(tmp_path):
    server = PrivateRedis(tmp_path / "redis.log").start()
    yield server
    server.stop()


@pytest.fixture
def rabbit():
    server = PrivateRabbit().start()
    yield server
    server.remove()


@pytest.fixture
def provider():
    fake = FakeProvider()
    yield fake
    fake.stop()


@pytest.fixture
def mall(postgres, redis, rabbit, provider, tmp_path):
    """Two processes of every service on the private servers; the payment provider is the fake
    Midtrans, answering within a second or not at all."""
    urls = {name: postgres.create_database(f"mpp_{name}") for name in SERVICES}
    env = {
        **CHAOS_ENV,
        "REDIS_URL": redis.url,
        "PAYMENT_PROVIDER": "midtrans",
        "MIDTRANS_BASE_URL": provider.url,
        "MIDTRANS_SERVER_KEY": fake_provider.MIDTRANS_KEY,
        "PROVIDER_HTTP_TIMEOUT": "1",
        "PROVIDER_HTTP_RETRIES": "1",
        # about four minutes of backoff in all: longer than the longest outage injected
        "EVENT_RETRY_DELAYS": "0.5,1,2,4,8,15,30,30,30,30,30,30",
    }
    mall = Mall(rabbit.amqp_uri, urls, tmp_path, env)
    try:
        mall.start()
        for replica in [mall.start_service(name) for name in SERVICES]:
            replica.wait_healthy(timeout=60)
        yield mall
    finally:
        mall.stop(signal.SIGKILL)  # the checks are done: no graceful wind-down (~10 s)


def outage(stop, start, seconds: float) -> float:
    began = time.monotonic()
    stop()
    time.sleep(seconds)
    start()
    return time.monotonic() - began


def provider_outage(provider: FakeProvider, seconds: float) -> float:
    """The provider times out and answers 5xx for ``seconds``, and longer (at most four times
    as long) until a charge has met the failure: charges come only as paid tickets complete,
    and with the short profile's 16 citizens a fixed window once met none."""
    began = time.monotonic()
    provider.fail()
    time.sleep(seconds)
    while not provider.failed and time.monotonic() < began + 4 * seconds:
        time.sleep(0.2)
    provider.fail(False)
    return time.monotonic() - began


@pytest.mark.timeout(PROFILE.deadline + 360)
def test_chaos_infrastructure_faults_lose_nothing(mall, postgres, redis, rabbit, provider):
    floor = open_floor(mall.url)
    floor.add_service("FREE", "F", fee_idr=0, counters=2)
    floor.add_service("PAID", "B", fee_idr=15000, counters=2)
    faults = [
        ("postgres restart", postgres.restart),
        ("provider timeouts and 5xx", lambda: provider_outage(provider, PROFILE.outage)),
        ("redis stop/start", lambda: outage(redis.stop, redis.start, PROFILE.outage)),
        ("rabbitmq restart", rabbit.restart),
        ("one of two processes of each service killed", lambda: sim.kill_one_of_two(mall)),
    ]
    # citizens keep arriving while the faults last (two of the five last an outage each)
    pay, lasting = sim.pay_at_provider(provider), PROFILE.outage / 2
    ledger, outages = run_journeys(floor, PROFILE, faults, pay=pay, fault_seconds=lasting)
    print(f"chaos: provider calls {len(provider.calls)}, failed {provider.failed}")

    problems = check_nothing_lost(
        mall, floor, ledger, PROFILE, vhost="/", amqp_uri=rabbit.amqp_uri, api=rabbit.api
    )
    if not provider.failed:
        problems.append("the provider outage met no call")
    assert not problems, "\n".join(problems)
