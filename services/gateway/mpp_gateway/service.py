"""The gateway: the mall's only HTTP surface. Thin handlers: authenticate, validate, one RPC.

Routes live in ``mpp_gateway.routes`` by area; this class only composes them with the
dependencies every handler uses.
"""

from __future__ import annotations

from nameko.dependency_providers import Config

from mpp_chassis.db import Database
from mpp_chassis.messaging import BoundedRpcProxy
from mpp_chassis.metrics import Metrics
from mpp_gateway import auth
from mpp_gateway.adapters.tables import metadata
from mpp_gateway.ops import GatewayOps
from mpp_gateway.routes.apikeys import ApiKeysRoutes
from mpp_gateway.routes.catalogue import CatalogueRoutes
from mpp_gateway.routes.payments import PaymentsRoutes
from mpp_gateway.routes.ratings import RatingsRoutes
from mpp_gateway.routes.tickets import TicketsRoutes


class GatewayService(
    GatewayOps, ApiKeysRoutes, CatalogueRoutes, TicketsRoutes, PaymentsRoutes, RatingsRoutes
):
    name = "gateway"

    config = Config()
    uow = Database(metadata)
    metrics_ = Metrics()
    queue_rpc = BoundedRpcProxy("queue")
    payment_rpc = BoundedRpcProxy("payment")
    rating_rpc = BoundedRpcProxy("rating")

    # -- auth plumbing used by the route decorator
    def authenticate(self, request) -> auth.Principal:
        return auth.authenticate(
            self.uow.session,
            request.headers.get("Authorization"),
            self.config.get("MALL_ADMIN_KEY"),
        )

    def authorize(self, principal, roles, agency_id) -> None:
        auth.authorize(principal, roles, agency_id)
