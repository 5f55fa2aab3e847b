"""Gateway routes: agencies, their services, counters and API keys."""

from __future__ import annotations

from werkzeug.wrappers import Response

from mpp_contracts import rpc as contracts
from mpp_gateway import auth
from mpp_gateway.http import read_json, route
from mpp_gateway.responses import AGENCY_ADMIN, ok


class CatalogueRoutes:
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
