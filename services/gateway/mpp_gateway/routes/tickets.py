"""Gateway routes: tickets, calling and counter actions."""

from __future__ import annotations

from nameko.exceptions import deserialize

from mpp_chassis import context
from mpp_chassis.grouping import ALONE
from mpp_contracts import rpc as contracts
from mpp_contracts.errors import ServiceUnavailable
from mpp_gateway import idempotency
from mpp_gateway.http import route
from mpp_gateway.responses import OFFICER, actor, ok
from mpp_gateway.schemas.queue import (
    CounterLineSchema,
    CounterSchema,
    TicketReadQuerySchema,
    TicketSchema,
)


class TicketsRoutes:
    @route(
        "POST",
        "/v1/tickets",
        body=contracts.TicketCreateSchema,
        response=TicketSchema,
        status=201,
        idempotent=True,
        summary="Take a ticket for a service (optional priority category, NIK, phone)",
    )
    def take_ticket(self, request, principal, body):
        # with an Idempotency-Key the queue issues one ticket per key: a retry that took over
        # an abandoned claim gets the ticket the first attempt issued
        key = idempotency.request_key(request)
        if self.take_batch.enabled:
            # the take-tickets reaching this process at once go to the queue in one RPC
            # (docs/decisions/0014-take-tickets-batched-at-the-gateway.md)
            correlation = context.correlation_id.get()
            item = {"data": body, "request_key": key, "correlation_id": correlation}
            ticket = self.take_batch.submit(item, self.take_tickets_at_once)
            if ticket is not ALONE:
                return ok(ticket, 201)
        return ok(self.queue_rpc.take_ticket(body, request_key=key), 201)

    def take_tickets_at_once(self, items: list[dict]) -> list:
        """One ``take_tickets`` RPC for a batch: each caller's ticket, or its own error (raised
        to it alone). A queue that does not answer in time is every caller's 503, as it would
        be alone; any other failure of the call sends each caller alone (an older queue without
        ``take_tickets``, say)."""
        try:
            answers = self.queue_rpc.take_tickets(items)
        except ServiceUnavailable as exc:
            return [exc] * len(items)
        return [deserialize(a["error"]) if "error" in a else a["ticket"] for a in answers]

    @route(
        "GET",
        "/v1/tickets/{ticket}",
        query=TicketReadQuerySchema,
        response=TicketSchema,
        summary="The virtual ticket: status, number, position, estimated wait, payment, rating. "
        "Needs its access code (?code=) or a key of its agency's staff (then without the "
        "citizen's rating token); anyone else gets 404",
    )
    def get_ticket(self, request, principal, ticket):
        return ok(self.read_ticket(request, ticket))

    @route(
        "DELETE",
        "/v1/tickets/{ticket}",
        query=TicketReadQuerySchema,
        response=TicketSchema,
        summary="The citizen gives up a waiting ticket, with its access code (?code=): 409 "
        "once called; anyone without the code gets 404",
    )
    def withdraw_ticket(self, request, principal, ticket):
        query = contracts.shared(TicketReadQuerySchema).load(request.args.to_dict())
        return ok(self.queue_rpc.withdraw_ticket(ticket, query.get("code")))

    def read_ticket(self, request, ticket: str) -> dict:
        """The ticket for its code's holder, or for a staff key of its agency, else 404."""
        return self.queue_rpc.get_ticket(ticket, *self.ticket_reader(request))

    def ticket_reader(self, request) -> tuple[str | None, dict | None]:
        """Who reads a ticket (or its invoice): the access code sent (``?code=``) and the
        actor of the key sent (an optional key on a public route: a key that is sent must be
        valid)."""
        query = contracts.shared(TicketReadQuerySchema).load(request.args.to_dict())
        staff = self.authenticate(request) if request.headers.get("Authorization") else None
        return query.get("code"), actor(staff)

    @route(
        "GET",
        "/v1/counters/{counter}/line",
        roles=OFFICER,
        query=contracts.CounterLineQuerySchema,
        response=CounterLineSchema,
        summary="An officer's console: the counter, the tickets it holds (called or being "
        "served) and its callable line in the order call-next takes it, with the day's count "
        "of waiting tickets",
    )
    def counter_line(self, request, principal, counter):
        # the queue checks the counter's agency first, then the query: a stranger gets 403
        # whatever they ask
        return ok(self.queue_rpc.counter_line(counter, actor(principal), request.args.to_dict()))

    @route(
        "POST",
        "/v1/counters/{counter}/call-next",
        roles=OFFICER,
        response=TicketSchema,
        idempotent=True,
        summary="Call the next eligible ticket (booked at their slot, priority without "
        "starving the regular line, then longest waiting). With an Idempotency-Key a retried "
        "press answers the ticket it called, never the next one",
    )
    def call_next(self, request, principal, counter):
        key = idempotency.request_key(request)
        return ok(self.queue_rpc.call_next(counter, actor(principal), request_key=key))

    @route(
        "POST",
        "/v1/counters/{counter}/open",
        roles=OFFICER,
        response=CounterSchema,
        idempotent=True,
        summary="The counter's officer opens it: it may call again. Opening an open counter "
        "answers it unchanged",
    )
    def open_counter(self, request, principal, counter):
        return ok(self.queue_rpc.set_counter_open(counter, True, actor(principal)))

    @route(
        "POST",
        "/v1/counters/{counter}/close",
        roles=OFFICER,
        response=CounterSchema,
        idempotent=True,
        summary="The counter's officer closes it: it stops calling; its line stays with the "
        "other counters of its services. 409 COUNTER_BUSY while it holds a called or served "
        "citizen (complete, transfer or mark a no-show first)",
    )
    def close_counter(self, request, principal, counter):
        return ok(self.queue_rpc.set_counter_open(counter, False, actor(principal)))

    @route(
        "POST",
        "/v1/tickets/{ticket}/{action}",
        roles=OFFICER,
        body=contracts.TicketActionSchema,
        response=TicketSchema,
        idempotent=True,
        summary="action: call (out of order; body counter_id), recall, start, complete, "
        "no-show, transfer (body to_service_id), cancel. Invalid transitions answer 409. With "
        "an Idempotency-Key a retried call or recall is answered as the first; a retried start, "
        "complete, no-show, cancel or transfer never acts twice (the ticket's state answers 409)",
    )
    def ticket_action(self, request, principal, ticket, action, body):
        key = idempotency.request_key(request)
        return ok(
            self.queue_rpc.ticket_action(ticket, action, body, actor(principal), request_key=key)
        )
