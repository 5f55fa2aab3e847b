"""Two malls sharing one Redis do not share rate-limit buckets by default (issue 18, item 6):
the prefix is derived from MALL_ID unless REDIS_PREFIX is set."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
import redis
import yaml
from nameko.cli.main import setup_yaml_parser

from mpp_gateway.ratelimit import RateLimiter, redis_prefix

CONFIG = Path(__file__).resolve().parents[3] / "services" / "gateway" / "config.yaml"
REDIS_URL = "redis://127.0.0.1:6379/0"


def gateway_config(monkeypatch, **env: str) -> dict:
    """services/gateway/config.yaml as `nameko run` loads it, with this environment."""
    for name in ("REDIS_PREFIX", "MALL_ID"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    setup_yaml_parser()
    return yaml.safe_load(CONFIG.read_text())


class FakeContainer:
    def __init__(self, config: dict):
        self.config = config


def limiter_for(config: dict):
    provider = RateLimiter()
    provider.container = FakeContainer(config)
    provider.setup()
    return provider.limiter


def test_the_prefix_comes_from_mall_id_unless_given(monkeypatch):
    assert redis_prefix(gateway_config(monkeypatch, MALL_ID="mpp-kota-a")) == "mpp:mpp-kota-a"
    assert redis_prefix(gateway_config(monkeypatch)) == "mpp:mpp-local"
    given = gateway_config(monkeypatch, MALL_ID="mpp-kota-a", REDIS_PREFIX="shared")
    assert redis_prefix(given) == "shared"


def test_two_malls_on_one_redis_count_apart(monkeypatch):
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=0.5).ping()
    except redis.RedisError:
        pytest.skip("needs Redis on 127.0.0.1:6379")
    run = uuid.uuid4().hex[:8]
    mall_a = limiter_for(gateway_config(monkeypatch, MALL_ID=f"a-{run}", REDIS_URL=REDIS_URL))
    mall_b = limiter_for(gateway_config(monkeypatch, MALL_ID=f"b-{run}", REDIS_URL=REDIS_URL))
    assert not mall_a.degraded and not mall_b.degraded
    bucket = f"key:{run}"
    assert mall_a.hit(bucket, 1) is None
    assert mall_a.hit(bucket, 1) is not None  # mall A is over its limit of 1
    assert mall_b.hit(bucket, 1) is None  # mall B's bucket of the same name is its own
    # replicas of one mall (same MALL_ID) share theirs
    replica = limiter_for(gateway_config(monkeypatch, MALL_ID=f"a-{run}", REDIS_URL=REDIS_URL))
    assert replica.hit(bucket, 1) is not None
