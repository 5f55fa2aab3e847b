"""The gateway: the mall's only HTTP surface. Thin handlers: authenticate, validate, one RPC.

Routes live in ``mpp_gateway.routes`` by area; this class only composes them with the
dependencies every handler uses.
"""

from __future__ import annotations

import hmac

from nameko.dependency_providers import Config
from nameko.timer import timer

from mpp_chassis.collector import FrozenSurvivors
from mpp_chassis.environment import NO_SIMULATOR, Secret, StartupCheck
from mpp_chassis.grouping import GroupCommit
from mpp_chassis.metrics import Metrics
from mpp_contracts.errors import Unauthorized
from mpp_gateway import auth, idempotency
from mpp_gateway.adapters.tables import metadata
from mpp_gateway.dependencies import GatewayDatabase
from mpp_gateway.http import RateLimited
from mpp_gateway.ops import GatewayOps
from mpp_gateway.ratelimit import RateLimiter
from mpp_gateway.routes.apikeys import ApiKeysRoutes
from mpp_gateway.routes.bookings import BookingsRoutes
from mpp_gateway.routes.catalogue import CatalogueRoutes
from mpp_gateway.routes.display import DisplayRoutes
from mpp_gateway.routes.display_snapshot import DisplaySnapshotRoutes
from mpp_gateway.routes.payments import PaymentsRoutes
from mpp_gateway.routes.ratings import RatingsRoutes
from mpp_gateway.routes.screens import ScreensRoutes
from mpp_gateway.routes.stats import StatsRoutes
from mpp_gateway.routes.tickets import TicketsRoutes
from mpp_gateway.rpc import TimedRpcProxy


class GatewayService(
    GatewayOps,
    ApiKeysRoutes,
    CatalogueRoutes,
    TicketsRoutes,
    BookingsRoutes,
    DisplaySnapshotRoutes,
    StatsRoutes,
    PaymentsRoutes,
    RatingsRoutes,
    DisplayRoutes,
    ScreensRoutes,
):
    name = "gateway"

    # deployed, the service refuses to start while one of these is missing or a local default
    startup_check = StartupCheck(
        secrets=(Secret("MALL_ADMIN_KEY", "local-mall-admin-key"),),
        rules=(NO_SIMULATOR,),  # its simulator routes would exist
    )
    config = Config()
    uow = GatewayDatabase(metadata)
    metrics_ = Metrics(log_http=False)  # the access log has each request's line
    queue_rpc = TimedRpcProxy("queue")
    take_batch = GroupCommit()  # GROUP_COMMIT_MS / _SIZE here: GATEWAY_TAKE_BATCH_MS / _SIZE
    payment_rpc = TimedRpcProxy("payment")
    rating_rpc = TimedRpcProxy("rating")
    limiter = RateLimiter()
    known_keys = auth.KnownKeys()
    collector = FrozenSurvivors()

    # -- auth plumbing used by the route decorator
    def authenticate(self, request) -> auth.Principal:
        """The caller's key. Failed attempts are counted per client address: past
        ``RATE_LIMIT_AUTH_FAILURES_PER_MINUTE`` of them, a key this process does not already
        know answers 429 before it is looked up in the database."""
        header = request.headers.get("Authorization")
        known = auth.known_principal(header, self.known_keys)
        if known is not None:  # resolved recently: neither the failure count nor the database
            return known
        bucket, limit = self.failure_bucket(request, "authfail")
        if not self._known_key(header):
            self.refuse_past_failures(bucket, limit, "failed authentications")
        try:
            return auth.authenticate(
                self.uow.session, header, self.config.get("MALL_ADMIN_KEY"), self.known_keys
            )
        except Unauthorized:
            self.limiter.hit(bucket, limit)
            raise

    def failure_bucket(self, request, kind: str) -> tuple[str, int]:
        """Where failed guesses of ``kind`` (keys, pairing codes) from this client address are
        counted, and how many a minute pass (``RATE_LIMIT_AUTH_FAILURES_PER_MINUTE``)."""
        limit = int(self.config.get("RATE_LIMIT_AUTH_FAILURES_PER_MINUTE", 30))
        return f"{kind}:{self.limiter.client_of(request)}", limit

    def refuse_past_failures(self, bucket: str, limit: int, what: str) -> None:
        """429 once ``bucket`` holds ``limit`` failures this minute (the caller counts each
        failure with ``self.limiter.hit``)."""
        retry_after = self.limiter.over(bucket, limit)
        if retry_after is not None:
            raise RateLimited(
                "RATE_LIMITED",
                f"more than {limit} {what} a minute from this address",
                {"retry_after": retry_after, "limit": limit},
            )

    def _known_key(self, header: str | None) -> bool:
        """The bootstrap key or a key resolved recently: answered without the database."""
        if not header or not header.startswith("Bearer "):
            return False
        key = header.removeprefix("Bearer ").strip()
        bootstrap = self.config.get("MALL_ADMIN_KEY")
        if bootstrap and hmac.compare_digest(key.encode(), str(bootstrap).encode()):
            return True
        return self.known_keys.get(auth.hash_key(key)) is not None

    def authorize(self, principal, roles, agency_id) -> None:
        auth.authorize(principal, roles, agency_id)

    def limit_rate(self, request, principal) -> None:
        """Per key on protected routes, per client address on public ones (429 + Retry-After)."""
        if principal is not None:
            bucket = f"key:{principal.key_id}"
            limit = int(self.config.get("RATE_LIMIT_PER_MINUTE", 600))
        else:
            bucket = f"ip:{self.limiter.client_of(request)}"
            limit = int(self.config.get("RATE_LIMIT_PUBLIC_PER_MINUTE", 300))
        retry_after = self.limiter.hit(bucket, limit)
        if retry_after is not None:
            raise RateLimited(
                "RATE_LIMITED",
                f"more than {limit} requests a minute",
                {"retry_after": retry_after, "limit": limit},
            )

    def run_idempotent(self, request, principal, spec, invoke):
        scope = idempotency.scope_of(principal, spec.method, spec.path)
        return idempotency.run_once(
            self.uow,
            request,
            scope,
            float(self.config.get("IDEMPOTENCY_TTL_HOURS", 24)),
            lambda: invoke(principal),
            stale_after_seconds=3 * float(self.config.get("RPC_TIMEOUT", 5)) + 5,
        )

    @timer(interval=3600)
    def purge_idempotency_keys(self) -> None:
        idempotency.purge(self.uow.session, float(self.config.get("IDEMPOTENCY_TTL_HOURS", 24)))
        self.uow.commit()
