"""Rate limits per API key (and per client address on public routes), shared by every gateway
replica through Redis: a fixed one-minute window counted with one atomic Lua script
(INCR, EXPIRE on the first hit, TTL for ``Retry-After``); no ``KEYS`` scans.

If Redis does not answer (or no ``REDIS_URL`` is set), the same limits are counted in this
process instead (:class:`LocalWindows`): limits degrade to per-replica, never to none. The
outage is logged once when it starts and once when Redis answers again, counted in
``mpp_rate_limiter_fallback_total`` and shown by ``mpp_rate_limiter_degraded``; Redis is asked
again only every few seconds, so an outage costs no latency.

The client address is the direct peer, unless that peer is one of ``TRUSTED_PROXIES`` (CIDRs):
then it is the right-most address of ``X-Forwarded-For`` that is not a trusted proxy
(:func:`client_address`), so a spoofed header from anyone else changes nothing.
"""

from __future__ import annotations

import ipaddress
import logging
import time

from cachetools import TTLCache
from nameko.extensions import DependencyProvider
from prometheus_client import Counter, Gauge

_log = logging.getLogger(__name__)

WINDOW_SECONDS = 60
RETRY_REDIS_SECONDS = 5
LOCAL_BUCKETS = 100_000  # buckets a process counts at most while Redis is away (LRU beyond)
_SCRIPT = """
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
local ttl = redis.call('TTL', KEYS[1])
if ttl < 0 then redis.call('EXPIRE', KEYS[1], ARGV[1]); ttl = tonumber(ARGV[1]) end
return {n, ttl}
"""
_PEEK = """
local n = tonumber(redis.call('GET', KEYS[1]) or '0')
return {n, redis.call('TTL', KEYS[1])}
"""

FALLBACK = Counter(
    "mpp_rate_limiter_fallback_total",
    "Requests counted by the in-process rate limiter because Redis did not answer",
)
DEGRADED = Gauge(
    "mpp_rate_limiter_degraded", "1 while rate limits are counted in this process, not Redis"
)


class LocalWindows:
    """One-minute windows counted in this process, each starting at its bucket's first hit (as
    the Redis script's EXPIRE), bounded: least recently used buckets are dropped beyond
    ``maxsize``, and a bucket's entry expires with its window."""

    def __init__(self, maxsize: int = LOCAL_BUCKETS) -> None:
        self._counts: TTLCache = TTLCache(maxsize, WINDOW_SECONDS)

    def hit(self, bucket: str) -> tuple[int, int]:
        now = time.monotonic()
        entry = self._counts.get(bucket)
        if entry is None or now >= entry[1]:
            entry = [0, now + WINDOW_SECONDS]
            self._counts[bucket] = entry  # the cache's expiry is set here, with the window
        entry[0] += 1
        return entry[0], max(int(entry[1] - now), 1)

    def peek(self, bucket: str) -> tuple[int, int]:
        now = time.monotonic()
        entry = self._counts.get(bucket)
        if entry is None or now >= entry[1]:
            return 0, WINDOW_SECONDS
        return entry[0], max(int(entry[1] - now), 1)


class Limiter:
    def __init__(self, url: str | None, prefix: str, trusted: tuple = ()) -> None:
        self.prefix = prefix
        self.trusted = trusted  # TRUSTED_PROXIES, parsed
        self.client = None
        self.script = None
        self.peek_script = None
        self.paused_until = 0.0
        self.local = LocalWindows()
        self.degraded = False
        if url:
            import redis

            self.client = redis.Redis.from_url(url, socket_connect_timeout=0.3, socket_timeout=0.3)
            self.script = self.client.register_script(_SCRIPT)
            self.peek_script = self.client.register_script(_PEEK)
        else:
            _log.warning("no REDIS_URL: rate limits are counted per gateway process")
            self._degrade(None)

    def client_of(self, request) -> str:
        return client_address(
            request.remote_addr, request.headers.get("X-Forwarded-For"), self.trusted
        )

    def hit(self, bucket: str, limit: int) -> int | None:
        """Count one request in ``bucket``; the seconds to wait if over ``limit``, else None."""
        if limit <= 0:
            return None
        count, ttl = self._call(self.script, self.local.hit, bucket)
        return max(int(ttl), 1) if int(count) > limit else None

    def over(self, bucket: str, limit: int) -> int | None:
        """Whether ``bucket`` already counted ``limit`` hits (the seconds to wait), not counting."""
        if limit <= 0:
            return None
        count, ttl = self._call(self.peek_script, self.local.peek, bucket)
        return max(int(ttl), 1) if int(count) >= limit else None

    def _call(self, script, local, bucket: str) -> tuple[int, int]:
        if script is not None and time.monotonic() >= self.paused_until:
            try:
                count, ttl = script(keys=[f"{self.prefix}:rl:{bucket}"], args=[WINDOW_SECONDS])
            except Exception as exc:
                self.paused_until = time.monotonic() + RETRY_REDIS_SECONDS
                self._degrade(exc)
            else:
                if self.degraded:
                    self.degraded = False
                    DEGRADED.set(0)
                    _log.warning("rate limiter: Redis answers again; limits are shared")
                return int(count), int(ttl)
        FALLBACK.inc()
        return local(bucket)

    def _degrade(self, exc: Exception | None) -> None:
        if not self.degraded:
            self.degraded = True
            DEGRADED.set(1)
            if exc is not None:
                _log.warning(
                    "rate limiter: Redis unavailable; counting limits in this process",
                    extra={"error": type(exc).__name__},
                )


def parse_networks(value: str | None) -> tuple:
    """``TRUSTED_PROXIES``: comma-separated addresses or CIDRs (a bad entry is a startup error)."""
    networks = []
    for part in str(value or "").split(","):
        if part.strip():
            try:
                networks.append(ipaddress.ip_network(part.strip(), strict=False))
            except ValueError as exc:
                raise ValueError(f"TRUSTED_PROXIES: {exc}") from None
    return tuple(networks)


def _address(value: str):
    try:
        return ipaddress.ip_address(value.strip())
    except ValueError:
        return None


def client_address(remote_addr: str | None, forwarded_for: str | None, trusted: tuple) -> str:
    """The direct peer; behind trusted proxies, the right-most forwarded address that is not one
    of them (the left part of ``X-Forwarded-For`` is the client's to write, so not trusted)."""
    peer = remote_addr or ""
    if not trusted or not forwarded_for:
        return peer
    current = _address(peer)
    if current is None or not any(current in net for net in trusted):
        return peer
    for hop in reversed(forwarded_for.split(",")):
        address = _address(hop)
        if address is None:  # garbage the client wrote: the last trusted hop is what we know
            break
        current = address
        if not any(address in net for net in trusted):
            break
    return str(current)


def redis_prefix(config: dict) -> str:
    """``REDIS_PREFIX`` if set, else ``mpp:<MALL_ID>``: two malls sharing one Redis never share
    a rate-limit bucket unless told to (gateway replicas of one mall share ``MALL_ID``)."""
    if prefix := str(config.get("REDIS_PREFIX") or "").strip():
        return prefix
    return f"mpp:{str(config.get('MALL_ID') or '').strip() or 'mpp-local'}"


class RateLimiter(DependencyProvider):
    """Injects the container's :class:`Limiter` (one Redis connection pool per process)."""

    def setup(self) -> None:
        config = self.container.config
        self.limiter = Limiter(
            str(config.get("REDIS_URL") or "") or None,
            redis_prefix(config),
            parse_networks(config.get("TRUSTED_PROXIES")),
        )

    def get_dependency(self, worker_ctx) -> Limiter:
        return self.limiter
