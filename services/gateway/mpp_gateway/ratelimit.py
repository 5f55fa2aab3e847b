"""Rate limits per API key (and per client address on public routes), shared by every gateway
replica through Redis: a fixed one-minute window per bucket, counted in Redis (one atomic Lua
script: INCRBY, PEXPIRE when the window starts, PTTL for ``Retry-After``); no ``KEYS`` scans.

A replica does not ask Redis on every request. It counts each bucket's hits here and sends them
in batches (:class:`Limiter`): the first hit of a window is sent at once (so the replica learns
the count the other replicas have made), then the hits are sent by a background flush every
``SYNC_SECONDS`` (one pipelined round trip for every bucket with unsent hits), or at once when a
bucket holds ``B`` unsent hits, ``B = max(1, SYNC_SHARE × limit)`` (5 %: 60 of the default
per-key 1,200).
Redis answers each send with the window's global count and remaining time; a request is refused
(429) when that count plus the replica's unsent hits is over the limit.

**Accuracy bound.** With one replica the limit is exact. With ``N`` replicas sharing a bucket,
a window admits at most ``limit + (N - 1) × B`` requests (plus, per replica, those that arrive
while its own send is in flight, one Redis round trip): a replica decides on everything Redis
had counted at its last answer plus its own hits, and misses at most the hits each other replica
took since its own last answer, at most ``B`` before it must send them. Limits under 40 have
``B = 1``: every hit is sent at once, so failure buckets (30 a minute by default) stay within one
request per replica.

If Redis does not answer (or no ``REDIS_URL`` is set), the same limits are counted in this
process instead (:class:`LocalWindows`): limits degrade to per-replica, never to none. The
outage is logged once when it starts and once when Redis answers again, counted in
``mpp_rate_limiter_fallback_total`` and shown by ``mpp_rate_limiter_degraded``; Redis is asked
again only every few seconds, so an outage costs no latency. Hits not yet sent when Redis went
away are sent once it answers again (while their window lasts).

The client address is the direct peer, unless that peer is one of ``TRUSTED_PROXIES`` (CIDRs):
then it is the right-most address of ``X-Forwarded-For`` that is not a trusted proxy
(:func:`client_address`), so a spoofed header from anyone else changes nothing.
"""

from __future__ import annotations

import ipaddress
import logging
import time

import eventlet
import redis
from cachetools import TTLCache
from nameko.extensions import DependencyProvider
from prometheus_client import Counter, Gauge
from redis.exceptions import NoScriptError

_log = logging.getLogger(__name__)

WINDOW_SECONDS = 60
RETRY_REDIS_SECONDS = 5
LOCAL_BUCKETS = 100_000  # buckets a process counts at most (LRU beyond)
SYNC_SECONDS = 0.1  # the longest a bucket's hits wait here before they are sent to Redis
SYNC_SHARE = 0.05  # ... or the most of its limit: B = max(1, SYNC_SHARE × limit) unsent hits
_SEND = """
local n = redis.call('INCRBY', KEYS[1], ARGV[1])
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[2]); ttl = tonumber(ARGV[2]) end
return {n, ttl}
"""
_PEEK = """
local n = tonumber(redis.call('GET', KEYS[1]) or '0')
return {n, redis.call('PTTL', KEYS[1])}
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


class SharedWindow:
    """What this replica knows of one bucket's window in Redis."""

    __slots__ = ("known", "unsent", "ends", "sent", "applied")

    def __init__(self) -> None:
        self.known = 0  # the global count at Redis's last answer (this replica's sent hits in it)
        self.unsent = 0  # hits counted here since, not yet sent
        self.ends = 0.0  # monotonic time the window ends, from Redis's PTTL
        self.sent = 0  # sends made, and the latest one whose answer was applied
        self.applied = 0

    def apply(self, sequence: int, count: int, ttl_ms: int) -> None:
        """Take Redis's answer to send ``sequence`` (an older answer arriving late is ignored)."""
        if sequence > self.applied:
            self.applied = sequence
            self.known = int(count)
            ttl = int(ttl_ms) / 1000 if int(ttl_ms) > 0 else WINDOW_SECONDS  # no key: not begun
            self.ends = time.monotonic() + ttl

    def retry_after(self, now: float) -> int:
        return max(int(self.ends - now), 1)


def batch_for(limit: int) -> int:
    """``B``: the unsent hits a bucket of ``limit`` may hold before they are sent at once."""
    return max(1, int(limit * SYNC_SHARE))


class Limiter:
    def __init__(
        self, url: str | None, prefix: str, trusted: tuple = (), timeout: float = 0.3
    ) -> None:
        """``timeout``: how long a request waits on Redis before it is counted here instead."""
        self.prefix = prefix
        self.trusted = trusted  # TRUSTED_PROXIES, parsed
        self.client = None
        self.script = None
        self.peek_script = None
        self.paused_until = 0.0
        self.local = LocalWindows()
        self.windows: TTLCache = TTLCache(LOCAL_BUCKETS, WINDOW_SECONDS)
        self.unsent: dict[str, SharedWindow] = {}  # buckets the next flush sends
        self.degraded = False
        if url:
            self.client = redis.Redis.from_url(
                url, socket_connect_timeout=timeout, socket_timeout=timeout
            )
            self.script = self.client.register_script(_SEND)
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
        if self._shared():
            now = time.monotonic()
            window = self.windows.get(bucket)
            if window is None or now >= window.ends:  # its first hit here: sent at once
                window = SharedWindow()
                window.unsent = 1
                if self._send(bucket, window):
                    self.windows[bucket] = window
                    return window.retry_after(now) if window.known > limit else None
            else:
                window.unsent += 1
                if window.unsent >= batch_for(limit):
                    self._send(bucket, window)  # the answer counts this hit in ``known``
                else:
                    self.unsent[bucket] = window
                count = window.known + window.unsent
                return window.retry_after(now) if count > limit else None
        FALLBACK.inc()
        count, ttl = self.local.hit(bucket)
        return ttl if count > limit else None

    def over(self, bucket: str, limit: int) -> int | None:
        """Whether ``bucket`` already counted ``limit`` hits (the seconds to wait), not counting."""
        if limit <= 0:
            return None
        if self._shared():
            now = time.monotonic()
            window = self.windows.get(bucket)
            if window is None or now >= window.ends:
                window = self._peek(bucket)
            if window is not None:
                count = window.known + window.unsent
                return window.retry_after(now) if count >= limit else None
        FALLBACK.inc()
        count, ttl = self.local.peek(bucket)
        return ttl if count >= limit else None

    def flush(self) -> None:
        """Send every bucket's unsent hits in one pipelined round trip (the background flush)."""
        if not self.unsent or not self._shared():
            return
        now = time.monotonic()
        due = [(bucket, w) for bucket, w in self.unsent.items() if w.unsent and now < w.ends]
        self.unsent = {}
        if not due:
            return
        pipe = self.client.pipeline(transaction=False)
        sends = []
        for bucket, window in due:
            amount, window.unsent = window.unsent, 0
            window.sent += 1
            sends.append((bucket, window, amount, window.sent))
            pipe.evalsha(self.script.sha, 1, self._key(bucket), amount, WINDOW_SECONDS * 1000)
        try:
            answers = pipe.execute(raise_on_error=False)
        except Exception as exc:
            answers = [exc] * len(sends)
        failure = None
        for (bucket, window, amount, sequence), answer in zip(sends, answers, strict=True):
            if isinstance(answer, Exception):
                failure = answer
                window.unsent += amount  # sent again later, while its window lasts
                self.unsent[bucket] = window
            else:
                window.apply(sequence, *answer)
        if failure is None:
            self._answered()
        elif isinstance(failure, NoScriptError):  # Redis restarted or flushed its scripts
            try:
                self.client.script_load(_SEND)
            except Exception as exc:
                self._outage(exc)
        else:
            self._outage(failure)

    def _send(self, bucket: str, window: SharedWindow) -> bool:
        amount, window.unsent = window.unsent, 0
        window.sent += 1
        sequence = window.sent
        try:
            count, ttl = self.script(keys=[self._key(bucket)], args=[amount, WINDOW_SECONDS * 1000])
        except Exception as exc:
            window.unsent += amount
            self.unsent[bucket] = window
            self._outage(exc)
            return False
        self._answered()
        window.apply(sequence, count, ttl)
        return True

    def _peek(self, bucket: str) -> SharedWindow | None:
        try:
            count, ttl = self.peek_script(keys=[self._key(bucket)])
        except Exception as exc:
            self._outage(exc)
            return None
        self._answered()
        window = SharedWindow()
        window.apply(1, count, ttl)
        window.sent = 1
        self.windows[bucket] = window
        return window

    def _key(self, bucket: str) -> str:
        return f"{self.prefix}:rl:{bucket}"

    def _shared(self) -> bool:
        return self.script is not None and time.monotonic() >= self.paused_until

    def _answered(self) -> None:
        if self.degraded:
            self.degraded = False
            DEGRADED.set(0)
            _log.warning("rate limiter: Redis answers again; limits are shared")

    def _outage(self, exc: Exception) -> None:
        self.paused_until = time.monotonic() + RETRY_REDIS_SECONDS
        self._degrade(exc)

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
    """Injects the container's :class:`Limiter` (one Redis connection pool per process) and runs
    its flush every ``SYNC_SECONDS``."""

    def setup(self) -> None:
        config = self.container.config
        self.limiter = Limiter(
            str(config.get("REDIS_URL") or "") or None,
            redis_prefix(config),
            parse_networks(config.get("TRUSTED_PROXIES")),
        )

    def start(self) -> None:
        if self.limiter.client is not None:
            self.container.spawn_managed_thread(self._flush_forever, identifier="ratelimit")

    def stop(self) -> None:
        self._flush()  # the last hits counted here

    def _flush_forever(self) -> None:
        while True:
            eventlet.sleep(SYNC_SECONDS)
            self._flush()

    def _flush(self) -> None:
        try:
            self.limiter.flush()
        except Exception:  # never end the flush: the next one sends what this one did not
            _log.exception("rate limiter: flush failed")

    def get_dependency(self, worker_ctx) -> Limiter:
        return self.limiter
