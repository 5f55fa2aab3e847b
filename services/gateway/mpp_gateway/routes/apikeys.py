"""Gateway routes: an agency's API keys and the mall's own mall_admin keys (issue, list without
secrets, revoke; the bootstrap ``MALL_ADMIN_KEY`` is one of the latter)."""

from __future__ import annotations

from datetime import datetime

from werkzeug.wrappers import Response

from mpp_contracts.errors import Forbidden, NotFound
from mpp_contracts.pagination import decode_cursor, page
from mpp_gateway import auth, pairing
from mpp_gateway.http import route
from mpp_gateway.responses import AGENCY_ADMIN, ok, page_args
from mpp_gateway.schemas.apikeys import (
    ApiKeyCreateSchema,
    ApiKeyIssuedSchema,
    ApiKeySchema,
    MallAdminKeyCreateSchema,
    PairingCodeCreateSchema,
    PairingCodeSchema,
    PairingRedeemSchema,
)
from mpp_gateway.schemas.common import PageQuerySchema


def refuse_mall_scope(data: dict, principal) -> None:
    """A display for the whole mall (every agency's calls) is the mall admin's to give."""
    if data["scope"] == "mall" and data["role"] == "display" and principal.role != "mall_admin":
        raise Forbidden("FORBIDDEN", "only the mall admin issues mall-scope display keys")


class ApiKeysRoutes:
    @route(
        "POST",
        "/v1/agencies/{agency}/api-keys",
        roles=AGENCY_ADMIN,
        agency_param="agency",
        body=ApiKeyCreateSchema,
        response=ApiKeyIssuedSchema,
        status=201,
        idempotent=True,
        summary="Issue an officer, kiosk or display key (the secret is shown once)",
    )
    def issue_api_key(self, request, principal, agency, body):
        if body["role"] not in auth.ISSUABLE_BY_AGENCY and principal.role != "mall_admin":
            raise Forbidden("FORBIDDEN", "only the mall admin issues agency_admin keys")
        refuse_mall_scope(body, principal)
        self.queue_rpc.get_agency(agency)  # 404 AGENCY_NOT_FOUND: no key for no agency
        key = auth.issue_key(self.uow.session, body["role"], agency, body["label"], body["scope"])
        self.uow.commit()
        return ok(key, 201)

    @route(
        "GET",
        "/v1/agencies/{agency}/api-keys",
        roles=AGENCY_ADMIN,
        agency_param="agency",
        query=PageQuerySchema,
        response=ApiKeySchema,
        many=True,
        summary="List the agency's keys (never their secrets)",
    )
    def list_api_keys(self, request, principal, agency):
        args = page_args(request)
        position = decode_cursor(args["cursor"], (datetime, str))
        items, after = auth.list_keys(self.uow.session, agency, position, args["limit"])
        return ok(page(items, after))

    @route(
        "DELETE",
        "/v1/agencies/{agency}/api-keys/{key_id}",
        roles=AGENCY_ADMIN,
        agency_param="agency",
        status=204,
        summary="Revoke a key: it answers 401 from now on (another gateway replica may accept "
        "it for up to AUTH_CACHE_SECONDS more)",
    )
    def revoke_api_key(self, request, principal, agency, key_id):
        auth.revoke_key(self.uow.session, agency, key_id)
        self.uow.commit()
        self.known_keys.forget(key_id)
        return Response(status=204)

    # -- pairing: a device fetches its own key with a short-lived code

    @route(
        "POST",
        "/v1/agencies/{agency}/pairing-codes",
        roles=AGENCY_ADMIN,
        agency_param="agency",
        body=PairingCodeCreateSchema,
        response=PairingCodeSchema,
        status=201,
        summary="A pairing code for a board, kiosk or counter: 8 digits, usable once within "
        "PAIRING_CODE_TTL_SECONDS; the device exchanges it at POST /v1/pairings for its own key",
    )
    def create_pairing_code(self, request, principal, agency, body):
        refuse_mall_scope(body, principal)
        self.queue_rpc.get_agency(agency)  # 404 AGENCY_NOT_FOUND
        ttl = int(self.config.get("PAIRING_CODE_TTL_SECONDS", 600))
        code = pairing.create_code(
            self.uow.session,
            body["role"],
            agency,
            body["label"],
            body["scope"],
            principal.key_id,
            ttl,
        )
        self.uow.commit()
        return ok(code, 201)

    @route(
        "POST",
        "/v1/pairings",
        body=PairingRedeemSchema,
        response=ApiKeyIssuedSchema,
        status=201,
        summary="A device exchanges its pairing code for its own key (the secret once). A "
        "wrong, used or expired code answers 404; past RATE_LIMIT_AUTH_FAILURES_PER_MINUTE such "
        "failures a minute from one address, 429, like failed keys",
    )
    def redeem_pairing_code(self, request, principal, body):
        bucket, limit = self.failure_bucket(request, "pairing")
        self.refuse_past_failures(bucket, limit, "failed pairing attempts")
        try:
            key = pairing.redeem(self.uow.session, body["code"])
        except NotFound:
            # end the transaction first: on SQLite its write lock, held across the limiter's
            # network call, stalls every other redeem of this process (eventlet)
            self.uow.session.rollback()
            self.limiter.hit(bucket, limit)  # a wrong, used or expired code: one guess spent
            raise
        self.uow.commit()
        return ok(key, 201)

    # -- the mall's own keys: mall_admin keys for people, and the bootstrap key among them

    @route(
        "POST",
        "/v1/api-keys",
        roles=(),  # the mall admin only
        body=MallAdminKeyCreateSchema,
        response=ApiKeyIssuedSchema,
        status=201,
        idempotent=True,
        summary="Issue a mall_admin key (the secret is shown once); with it, the bootstrap "
        "MALL_ADMIN_KEY can be revoked",
    )
    def issue_mall_admin_key(self, request, principal, body):
        key = auth.issue_key(self.uow.session, "mall_admin", None, body["label"])
        self.uow.commit()
        return ok(key, 201)

    @route(
        "GET",
        "/v1/api-keys",
        roles=(),  # the mall admin only
        query=PageQuerySchema,
        response=ApiKeySchema,
        many=True,
        summary="List the mall_admin keys, the configured bootstrap key included (never secrets)",
    )
    def list_mall_admin_keys(self, request, principal):
        args = page_args(request)
        position = decode_cursor(args["cursor"], (datetime, str))
        if bootstrap := self.config.get("MALL_ADMIN_KEY"):
            auth.record_bootstrap(self.uow.session, bootstrap)
        # agency None: the keys of no agency (agency_id IS NULL), the mall_admin keys
        items, after = auth.list_keys(self.uow.session, None, position, args["limit"])
        return ok(page(items, after))

    @route(
        "GET",
        "/v1/api-keys/current",
        roles=(),  # the mall admin only
        response=ApiKeySchema,
        summary="The mall_admin key making this request (never its secret): the mall screen "
        "marks it in the list and warns before revoking it",
    )
    def current_mall_admin_key(self, request, principal):
        return ok(auth.get_key(self.uow.session, principal.key_id))

    @route(
        "DELETE",
        "/v1/api-keys/{key_id}",
        roles=(),  # the mall admin only
        status=204,
        summary="Revoke a mall_admin key; revoking the bootstrap key's id stops MALL_ADMIN_KEY "
        "working even while it stays configured (another gateway replica may accept it for up "
        "to AUTH_CACHE_SECONDS more)",
    )
    def revoke_mall_admin_key(self, request, principal, key_id):
        if bootstrap := self.config.get("MALL_ADMIN_KEY"):
            auth.record_bootstrap(self.uow.session, bootstrap)
        auth.revoke_key(self.uow.session, None, key_id)
        self.uow.commit()
        self.known_keys.forget(key_id)
        return Response(status=204)
