"""Gateway routes: tickets, calling and counter actions."""

from __future__ import annotations

from mpp_contracts import rpc as contracts
from mpp_gateway.http import read_json, route
from mpp_gateway.responses import OFFICER, actor, ok


class TicketsRoutes:
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
