"""Gateway routes: ratings, public summaries, the leaderboard and agencies' complaints.

One RPC per request. Query strings are validated here with the same schemas the rating service
loads, then passed on as given (plain JSON); agency scope of complaints is checked again in the
rating service, which alone knows a complaint's agency.
"""

from __future__ import annotations

from mpp_contracts import rpc as contracts
from mpp_gateway import idempotency
from mpp_gateway.http import route
from mpp_gateway.responses import AGENCY_ADMIN, actor, ok
from mpp_gateway.schemas.rating import (
    CommentPublishedSchema,
    ComplaintSchema,
    LeaderboardSchema,
    RatingSchema,
    RatingSummarySchema,
)


def _query(request, schema) -> dict:
    """The query string validated by ``schema`` (422 on error), passed on as plain strings."""
    args = {k: v for k, v in request.args.items() if v != ""}
    contracts.shared(schema).load(args)
    return args


class RatingsRoutes:
    @route(
        "POST",
        "/v1/ratings",
        body=contracts.RatingCreateSchema,
        response=RatingSchema,
        status=201,
        idempotent=True,
        summary="Rate a finished service with its one-time rating token",
    )
    def submit_rating(self, request, principal, body):
        # with an Idempotency-Key the rating service stores one rating per key: a retry that
        # took over an abandoned claim gets the rating the first attempt stored
        key = idempotency.request_key(request)
        return ok(self.rating_rpc.submit_rating(body, request_key=key), 201)

    @route(
        "GET",
        "/v1/ratings/summary",
        query=contracts.RatingSummaryQuerySchema,
        response=RatingSummarySchema,
        summary="Public IKM, CSAT and average stars for an agency, service, counter or officer",
    )
    def ratings_summary(self, request, principal):
        return ok(self.rating_rpc.summary(_query(request, contracts.RatingSummaryQuerySchema)))

    @route(
        "GET",
        "/v1/leaderboard",
        query=contracts.LeaderboardQuerySchema,
        response=LeaderboardSchema,
        summary="Agencies ranked by converted IKM (only representative samples ranked)",
    )
    def leaderboard(self, request, principal):
        return ok(self.rating_rpc.leaderboard(_query(request, contracts.LeaderboardQuerySchema)))

    @route(
        "POST",
        "/v1/ratings/{rating}/publish",
        roles=AGENCY_ADMIN,
        response=CommentPublishedSchema,
        summary="Publish a citizen's comment in the agency's public summary",
    )
    def publish_rating_comment(self, request, principal, rating):
        return ok(self.rating_rpc.publish_comment(rating, actor(principal)))

    @route(
        "GET",
        "/v1/agencies/{agency}/complaints",
        roles=AGENCY_ADMIN,
        agency_param="agency",
        query=contracts.ComplaintListQuerySchema,
        response=ComplaintSchema,
        many=True,
        summary="The agency's complaints from low or flagged ratings, newest first",
    )
    def list_complaints(self, request, principal, agency):
        query = _query(request, contracts.ComplaintListQuerySchema)
        return ok(self.rating_rpc.list_complaints(agency, query, actor(principal)))

    @route(
        "POST",
        "/v1/complaints/{complaint}/responses",
        roles=AGENCY_ADMIN,
        body=contracts.ComplaintResponseCreateSchema,
        response=ComplaintSchema,
        status=201,
        idempotent=True,
        summary="Answer a complaint of your agency; resolve=true also closes it",
    )
    def respond_to_complaint(self, request, principal, complaint, body):
        return ok(self.rating_rpc.respond_to_complaint(complaint, body, actor(principal)), 201)
