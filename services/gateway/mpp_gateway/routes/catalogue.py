"""Gateway routes: agencies, their services and counters (API keys: ``routes/apikeys.py``)."""

from __future__ import annotations

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
