"""Gateway routes: queue KPIs for managers."""

from __future__ import annotations

from mpp_contracts import rpc as contracts
from mpp_contracts.errors import Forbidden
from mpp_gateway.http import route
from mpp_gateway.responses import AGENCY_ADMIN, ok
from mpp_gateway.schemas.queue import QueueStatsSchema


class StatsRoutes:
    @route(
        "GET",
        "/v1/stats/queue",
        roles=AGENCY_ADMIN,
        query=contracts.StatsQuerySchema,
        response=QueueStatsSchema,
        summary="Waiting and serving times (mean, median, p90), served, no-shows, transfers and "
        "SLA breaches of one mall day, overall and per agency, service and counter; and hour by "
        "hour (local hours): tickets taken, served, and the waits of those who arrived",
    )
    def queue_stats(self, request, principal):
        args = {k: v for k, v in request.args.items() if v != ""}
        contracts.shared(contracts.StatsQuerySchema).load(args)
        agency = args.get("agency")
        if principal.role != "mall_admin":
            if agency not in (None, principal.agency_id):
                raise Forbidden("FORBIDDEN", "this key belongs to another agency")
            agency = principal.agency_id
        return ok(self.queue_rpc.queue_stats(agency, args.get("date")))
