"""Gateway routes: ratings, summaries and leaderboards."""

from __future__ import annotations

from mpp_contracts import rpc as contracts
from mpp_gateway.http import read_json, route
from mpp_gateway.responses import ok


class RatingsRoutes:
    @route("POST", "/v1/ratings")
    def submit_rating(self, request, principal):
        data = contracts.RatingCreateSchema().load(read_json(request))
        return ok(self.rating_rpc.submit_rating(data), 201)

    @route("GET", "/v1/ratings/summary")
    def ratings_summary(self, request, principal):
        filters = {k: request.args.get(k) for k in ("agency", "service", "counter", "from", "to")}
        return ok(self.rating_rpc.summary({k: v for k, v in filters.items() if v}))
