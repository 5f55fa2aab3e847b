"""Gateway routes: agencies, their services and counters (API keys: ``routes/apikeys.py``).

One RPC per request: bodies and query strings are validated here with the same schemas the
queue service loads, then passed on as plain JSON.
"""

from __future__ import annotations

from mpp_contracts import rpc as contracts
from mpp_contracts.pagination import PageQuerySchema
from mpp_gateway import auth
from mpp_gateway.http import read_json, route
from mpp_gateway.responses import AGENCY_ADMIN, ok, page_args
from mpp_gateway.schemas.queue import (
    AgencyCreatedSchema,
    AgencySchema,
    CounterSchema,
    ServiceSchema,
)


class CatalogueRoutes:
    @route(
        "POST",
        "/v1/agencies",
        roles=(),
        body=contracts.AgencyCreateSchema,
        response=AgencyCreatedSchema,
        status=201,
        idempotent=True,
        summary="Register an agency; the answer carries its first agency_admin key (shown once)",
    )
    def create_agency(self, request, principal, body):
        agency = self.queue_rpc.register_agency(body)
        key = auth.issue_key(self.uow.session, "agency_admin", agency["id"], "first admin key")
        self.uow.commit()
        return ok({**agency, "admin_api_key": key}, 201)

    @route(
        "GET",
        "/v1/agencies",
        query=PageQuerySchema,
        response=AgencySchema,
        many=True,
        summary="The mall's agencies, by code",
    )
    def list_agencies(self, request, principal):
        args = page_args(request)
        return ok(self.queue_rpc.list_agencies(args["cursor"], args["limit"]))

    @route(
        "POST",
        "/v1/agencies/{agency}/services",
        roles=AGENCY_ADMIN,
        agency_param="agency",
        body=contracts.ServiceCreateSchema,
        response=ServiceSchema,
        status=201,
        idempotent=True,
        summary="Plug a service into the mall (fee, SLA, prefix, requirements, hours, booking)",
    )
    def plug_service(self, request, principal, agency):
        data = read_json(request)  # as sent (validated by route): the queue loads it
        return ok(self.queue_rpc.plug_service(agency, data), 201)

    @route(
        "PATCH",
        "/v1/agencies/{agency}/services/{service}",
        roles=AGENCY_ADMIN,
        agency_param="agency",
        body=contracts.ServiceUpdateSchema,
        response=ServiceSchema,
        summary="Change a service; tickets already issued keep their number, fee and SLA",
    )
    def update_service(self, request, principal, agency, service):
        data = read_json(request)  # as sent (validated by route): the queue loads it
        return ok(self.queue_rpc.update_service(agency, service, data))

    @route(
        "DELETE",
        "/v1/agencies/{agency}/services/{service}",
        roles=AGENCY_ADMIN,
        agency_param="agency",
        response=ServiceSchema,
        summary="Unplug a service: no new tickets; tickets already issued are still served",
    )
    def unplug_service(self, request, principal, agency, service):
        return ok(self.queue_rpc.unplug_service(agency, service))

    @route(
        "GET",
        "/v1/services",
        query=contracts.ServicesQuerySchema,
        response=ServiceSchema,
        many=True,
        summary="The mall's catalogue of active services (filter by agency)",
    )
    def list_services(self, request, principal):
        args = {k: v for k, v in request.args.items() if v != ""}
        query = contracts.shared(contracts.ServicesQuerySchema).load(args)
        return ok(self.queue_rpc.list_services(query["agency"], query["cursor"], query["limit"]))

    @route(
        "POST",
        "/v1/agencies/{agency}/counters",
        roles=AGENCY_ADMIN,
        agency_param="agency",
        body=contracts.CounterCreateSchema,
        response=CounterSchema,
        status=201,
        idempotent=True,
        summary="Add a counter (loket) and the services it serves",
    )
    def add_counter(self, request, principal, agency, body):
        return ok(self.queue_rpc.add_counter(agency, body), 201)

    @route(
        "PATCH",
        "/v1/agencies/{agency}/counters/{counter}",
        roles=AGENCY_ADMIN,
        agency_param="agency",
        body=contracts.CounterUpdateSchema,
        response=CounterSchema,
        summary="Rename a counter, change its services, open or close it (no ticket is lost)",
    )
    def update_counter(self, request, principal, agency, counter, body):
        return ok(self.queue_rpc.update_counter(agency, counter, body))

    @route(
        "GET",
        "/v1/agencies/{agency}/counters",
        roles=AGENCY_ADMIN,
        agency_param="agency",
        response=CounterSchema,
        many=True,
        summary="The agency's counters, by name",
    )
    def list_counters(self, request, principal, agency):
        args = page_args(request)
        return ok(self.queue_rpc.list_counters(agency, args["cursor"], args["limit"]))
