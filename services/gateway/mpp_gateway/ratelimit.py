"""Rate limits per API key (and per client IP on public routes), shared by every gateway
replica through Redis: a fixed one-minute window counted with one atomic Lua script
(INCR, EXPIRE on the first hit, TTL for ``Retry-After``); no ``KEYS`` scans.

If Redis does not answer, requests pass (limits are protection, not correctness) and Redis is
not asked again for a few seconds, so an outage costs no latency.
"""

from __future__ import annotations

import logging
import time

from nameko.extensions import DependencyProvider

_log = logging.getLogger(__name__)

WINDOW_SECONDS = 60
_SCRIPT = """
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
local ttl = redis.call('TTL', KEYS[1])
if ttl < 0 then redis.call('EXPIRE', KEYS[1], ARGV[1]); ttl = tonumber(ARGV[1]) end
return {n, ttl}
"""


class Limiter:
    def __init__(self, url: str | None, prefix: str) -> None:
        self.prefix = prefix
        self.client = None
        self.script = None
        self.paused_until = 0.0
        if url:
            import redis

            self.client = redis.Redis.from_url(url, socket_connect_timeout=0.3, socket_timeout=0.3)
            self.script = self.client.register_script(_SCRIPT)

    def hit(self, bucket: str, limit: int) -> int | None:
        """Count one request in ``bucket``; the seconds to wait if over ``limit``, else None."""
        if self.script is None or limit <= 0 or time.monotonic() < self.paused_until:
            return None
        try:
            count, ttl = self.script(keys=[f"{self.prefix}:rl:{bucket}"], args=[WINDOW_SECONDS])
        except Exception as exc:
            self.paused_until = time.monotonic() + 5
            _log.warning("rate limiter unavailable; passing", extra={"error": type(exc).__name__})
            return None
        return max(int(ttl), 1) if int(count) > limit else None


class RateLimiter(DependencyProvider):
    """Injects the container's :class:`Limiter` (one Redis connection pool per process)."""

    def setup(self) -> None:
        config = self.container.config
        self.limiter = Limiter(
            str(config.get("REDIS_URL") or "") or None, str(config.get("REDIS_PREFIX", "mpp"))
        )

    def get_dependency(self, worker_ctx) -> Limiter:
        return self.limiter
