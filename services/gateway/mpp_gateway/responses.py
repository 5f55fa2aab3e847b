"""Small helpers every route module uses to answer."""

from __future__ import annotations

import json

from werkzeug.wrappers import Response

from mpp_contracts.pagination import PageQuerySchema
from mpp_contracts.rpc import shared
from mpp_gateway import auth

AGENCY_ADMIN = ("agency_admin",)
OFFICER = ("officer",)


def ok(body, status: int = 200, headers: dict | None = None) -> Response:
    return Response(
        json.dumps(body, separators=(",", ":")),
        status=status,
        headers=headers or {},
        mimetype="application/json",
    )


def actor(principal: auth.Principal | None) -> dict | None:
    """Who acts, as the services need it: role, agency scope and key id (never the key)."""
    if principal is None:
        return None
    return {"role": principal.role, "agency_id": principal.agency_id, "key_id": principal.key_id}


def page_args(request) -> dict:
    """``cursor`` and bounded ``limit`` from the query string, for a list RPC (422 if invalid)."""
    args = {k: request.args.get(k) for k in ("cursor", "limit") if k in request.args}
    return shared(PageQuerySchema).load(args)
