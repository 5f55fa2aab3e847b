"""Gateway route: the display board's snapshot (the live stream is ``routes/display.py``)."""

from __future__ import annotations

from mpp_contracts import rpc as contracts
from mpp_contracts.errors import Forbidden
from mpp_gateway.http import route
from mpp_gateway.responses import ok
from mpp_gateway.schemas.queue import DisplaySnapshotSchema


class DisplaySnapshotRoutes:
    @route(
        "GET",
        "/v1/display",
        roles=("display",),
        query=contracts.DisplayQuerySchema,
        response=DisplaySnapshotSchema,
        summary="Current call per counter and the day's latest calls, with announcement texts "
        "(what a board shows on (re)connecting; then follow /v1/display/stream)",
    )
    def display_snapshot(self, request, principal):
        args = {k: v for k, v in request.args.items() if v != ""}
        query = contracts.shared(contracts.DisplayQuerySchema).load(args)
        agency = query["agency"]
        if principal.role != "mall_admin" and principal.agency_id is not None:
            if agency not in (None, principal.agency_id):
                raise Forbidden("FORBIDDEN", "this display key shows one agency only")
            agency = principal.agency_id
        return ok(self.queue_rpc.display_snapshot(agency, query["recent"]))
