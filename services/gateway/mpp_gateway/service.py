"""The gateway: the mall's only HTTP surface. Thin handlers: authenticate, validate, one RPC."""

from __future__ import annotations

import json

from nameko.dependency_providers import Config
from werkzeug.wrappers import Response

from mpp_chassis.db import Database
from mpp_chassis.messaging import BoundedRpcProxy
from mpp_chassis.metrics import Metrics
from mpp_contracts import rpc as contracts
from mpp_gateway import auth
from mpp_gateway.adapters.tables import metadata
from mpp_gateway.http import read_json, route
from mpp_gateway.ops import GatewayOps

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


class GatewayService(GatewayOps):
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

    # -- agencies and catalogue
    @route("POST", "/v1/agencies", roles=())
    def create_agency(self, request, principal):
        data = contracts.AgencyCreateSchema().load(read_json(request))
        agency = self.queue_rpc.register_agency(data)
        key = auth.issue_key(self.uow.session, "agency_admin", agency["id"], "first admin key")
        self.uow.commit()
        return ok({**agency, "admin_api_key": key}, 201)

    @route("GET", "/v1/agencies")
    def list_agencies(self, request, principal):
        return ok({"items": self.queue_rpc.list_agencies()})

    @route("POST", "/v1/agencies/{agency}/services", roles=AGENCY_ADMIN, agency_param="agency")
    def plug_service(self, request, principal, agency):
        data = contracts.ServiceCreateSchema().load(read_json(request))
        return ok(self.queue_rpc.plug_service(agency, data), 201)

    @route("GET", "/v1/services")
    def list_services(self, request, principal):
        return ok({"items": self.queue_rpc.list_services(request.args.get("agency"))})

    @route("POST", "/v1/agencies/{agency}/counters", roles=AGENCY_ADMIN, agency_param="agency")
    def add_counter(self, request, principal, agency):
        data = contracts.CounterCreateSchema().load(read_json(request))
        return ok(self.queue_rpc.add_counter(agency, data), 201)

    @route("POST", "/v1/agencies/{agency}/api-keys", roles=AGENCY_ADMIN, agency_param="agency")
    def issue_api_key(self, request, principal, agency):
        data = read_json(request)
        role = data.get("role")
        if role not in auth.ISSUABLE_BY_AGENCY:
            from mpp_contracts.errors import ValidationFailed

            raise ValidationFailed(
                "VALIDATION_FAILED",
                "invalid fields",
                {"role": [f"must be one of {', '.join(auth.ISSUABLE_BY_AGENCY)}"]},
            )
        key = auth.issue_key(self.uow.session, role, agency, data.get("label"))
        self.uow.commit()
        return ok(key, 201)

    @route(
        "DELETE",
        "/v1/agencies/{agency}/api-keys/{key_id}",
        roles=AGENCY_ADMIN,
        agency_param="agency",
    )
    def revoke_api_key(self, request, principal, agency, key_id):
        auth.revoke_key(self.uow.session, agency, key_id)
        self.uow.commit()
        return Response(status=204)

    # -- tickets
    @route("POST", "/v1/tickets")
    def take_ticket(self, request, principal):
        data = contracts.TicketCreateSchema().load(read_json(request))
        return ok(self.queue_rpc.take_ticket(data), 201)

    @route("GET", "/v1/tickets/{ticket}")
    def get_ticket(self, request, principal, ticket):
        return ok(self.queue_rpc.get_ticket(ticket))

    @route("POST", "/v1/counters/{counter}/call-next", roles=OFFICER)
    def call_next(self, request, principal, counter):
        return ok(self.queue_rpc.call_next(counter, actor(principal)))

    @route("POST", "/v1/tickets/{ticket}/{action}", roles=OFFICER)
    def ticket_action(self, request, principal, ticket, action):
        data = contracts.TicketActionSchema().load(read_json(request))
        return ok(self.queue_rpc.ticket_action(ticket, action, data, actor(principal)))

    # -- payments
    @route("GET", "/v1/payments/{payment}")
    def get_payment(self, request, principal, payment):
        return ok(self.payment_rpc.get_payment(payment))

    @route("GET", "/v1/tickets/{ticket}/payment")
    def get_ticket_payment(self, request, principal, ticket):
        return ok(self.payment_rpc.get_ticket_payment(ticket))

    @route("POST", "/v1/webhooks/payments/{provider}")
    def payment_webhook(self, request, principal, provider):
        headers = {k.lower(): v for k, v in request.headers.items()}
        body = request.get_data(as_text=True)
        return ok(self.payment_rpc.handle_notification(provider, headers, body))

    @route("POST", "/v1/simulator/payments/{payment}/pay")
    def simulator_pay(self, request, principal, payment):
        return ok(self.payment_rpc.simulate_payment(payment), 202)

    # -- ratings
    @route("POST", "/v1/ratings")
    def submit_rating(self, request, principal):
        data = contracts.RatingCreateSchema().load(read_json(request))
        return ok(self.rating_rpc.submit_rating(data), 201)

    @route("GET", "/v1/ratings/summary")
    def ratings_summary(self, request, principal):
        filters = {k: request.args.get(k) for k in ("agency", "service", "counter", "from", "to")}
        return ok(self.rating_rpc.summary({k: v for k, v in filters.items() if v}))
