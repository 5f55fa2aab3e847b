"""Rate limits counted by each replica and sent to Redis in batches, against a real Redis: far
fewer commands than requests, and replicas sharing Redis together still refuse past the limit
within the bound the module states (``limit + (N - 1) × B``)."""

from __future__ import annotations

import random
import uuid

import eventlet
import pytest
import redis

from mpp_gateway.ratelimit import Limiter, batch_for
from tests.support.infra import wait_until

REDIS_URL = "redis://127.0.0.1:6379/0"


def shared(prefix: str) -> Limiter:
    """A replica counting in Redis. These tests are about counting, not outages: a Redis reply
    slower than the gateway's 0.3 s (a loaded CI machine) would make it count alone and admit
    up to the limit by itself, so it waits longer."""
    return Limiter(REDIS_URL, prefix, timeout=5)


@pytest.fixture
def prefix() -> str:
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=0.5).ping()
    except redis.RedisError:
        pytest.skip("needs Redis on 127.0.0.1:6379")
    return f"mpp-test-sync-{uuid.uuid4().hex[:8]}"


class Monitor:
    """The commands Redis receives from its clients that name ``prefix`` (MONITOR sees every
    client's; those a Lua script runs are left out: they are one command's parts)."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.monitor = redis.Redis.from_url(REDIS_URL).monitor()
        self.monitor.__enter__()

    def commands(self) -> list[str]:
        """What arrived so far: read up to a marker command sent now, so nothing is awaited
        blindly."""
        marker = f"{self.prefix}:marker:{uuid.uuid4().hex}"
        redis.Redis.from_url(REDIS_URL).get(marker)
        seen = []
        while True:
            command = self.monitor.next_command()
            if marker in command["command"]:
                return seen
            if self.prefix in command["command"] and command.get("client_type") != "lua":
                seen.append(command["command"])

    def close(self) -> None:
        self.monitor.__exit__()


def count_in_redis(prefix: str, bucket: str) -> int:
    return int(redis.Redis.from_url(REDIS_URL).get(f"{prefix}:rl:{bucket}") or 0)


def test_a_hundred_requests_cost_two_redis_commands_not_a_hundred(prefix):
    limiter = shared(prefix)
    monitor = Monitor(prefix)
    try:
        assert [limiter.hit("key:k1", 10_000) for _ in range(100)] == [None] * 100
        assert len(monitor.commands()) == 1  # the window's first hit, sent at once
        limiter.flush()  # what the gateway's background flush does every SYNC_SECONDS
        assert len(monitor.commands()) == 1  # the 99 others, in one command
        limiter.flush()
        assert monitor.commands() == []  # nothing unsent: an idle replica asks nothing
        assert count_in_redis(prefix, "key:k1") == 100
    finally:
        monitor.close()


def test_a_bucket_sends_at_once_when_its_unsent_hits_reach_the_batch(prefix):
    limiter = shared(prefix)
    assert batch_for(100) == 5 and batch_for(30) == 1 and batch_for(0) == 1
    for _ in range(1 + 5):  # the first hit, then one batch of 5
        limiter.hit("key:k2", 100)
    assert count_in_redis(prefix, "key:k2") == 6


def hits_admitted(replicas: list[Limiter], order: list[int], limit: int, flushes: int) -> int:
    """Hits in ``order`` (replica indexes), each replica flushing every ``flushes`` of its own
    hits (0: never, so only the batches are sent); how many were let through."""
    admitted = 0
    taken = [0] * len(replicas)
    for index in order:
        replica = replicas[index]
        if replica.hit("ip:203.0.113.9", limit) is None:
            admitted += 1
        taken[index] += 1
        if flushes and taken[index] % (flushes + index) == 0:
            replica.flush()
    return admitted


@pytest.mark.parametrize("replica_count", [2, 3])
@pytest.mark.parametrize("schedule", ["alternate", "blocks", "random"])
@pytest.mark.parametrize("flushes", [0, 3])
def test_replicas_sharing_redis_refuse_past_the_limit_within_the_bound(
    prefix, replica_count, schedule, flushes
):
    limit, hits = 100, 400
    replicas = [shared(prefix) for _ in range(replica_count)]
    if schedule == "alternate":
        order = [i % replica_count for i in range(hits)]
    elif schedule == "blocks":
        order = [(i // 7) % replica_count for i in range(hits)]
    else:
        rng = random.Random(20)
        order = [rng.randrange(replica_count) for _ in range(hits)]
    admitted = hits_admitted(replicas, order, limit, flushes)
    assert not any(replica.degraded for replica in replicas)  # every hit was counted in Redis
    bound = limit + (replica_count - 1) * batch_for(limit)
    assert limit <= admitted <= bound, (admitted, bound)
    # once each has sent what it holds, every replica refuses
    for replica in replicas:
        replica.flush()
    assert all(replica.hit("ip:203.0.113.9", limit) is not None for replica in replicas)
    for replica in replicas:
        replica.flush()
    assert count_in_redis(prefix, "ip:203.0.113.9") == hits + replica_count


def test_one_replica_is_exact(prefix):
    limiter = shared(prefix)
    answers = [limiter.hit("key:k3", 100) for _ in range(130)]
    assert answers[:100] == [None] * 100
    assert all(answer is not None and 1 <= answer <= 60 for answer in answers[100:])


def test_a_failure_bucket_is_read_from_redis_before_it_is_counted_here(prefix):
    """``over`` (failed authentications: checked, then counted on failure) sees what the other
    replicas counted, and what this one did."""
    one, other = shared(prefix), shared(prefix)
    for _ in range(3):
        one.hit("authfail:198.51.100.4", 3)
    assert other.over("authfail:198.51.100.4", 3) is not None
    assert one.over("authfail:198.51.100.4", 3) is not None
    assert other.over("authfail:198.51.100.5", 3) is None


@pytest.mark.integration
def test_the_gateway_sends_its_counted_hits_in_the_background(container_factory, gateway_config):
    from tests.gateway.interface.test_gateway_rate_limits import start

    gateway_config.update(RATE_LIMIT_PUBLIC_PER_MINUTE=10_000)
    gw = start(container_factory, gateway_config)
    # at once: no queue answers here, so each request waits out its 1 s call bound
    list(eventlet.GreenPool(20).imap(lambda _: gw.request("GET", "/v1/agencies"), range(20)))
    prefix = gateway_config["REDIS_PREFIX"]
    wait_until(lambda: count_in_redis(prefix, "ip:127.0.0.1") == 20, timeout=5, message="hits sent")
