"""Gateway routes: the live display stream (the snapshot ``GET /v1/display`` is the queue's)."""

from __future__ import annotations

from marshmallow import Schema
from werkzeug.wrappers import Response

from mpp_contracts.bounds import Id
from mpp_contracts.errors import Forbidden
from mpp_contracts.rpc import shared
from mpp_gateway.broadcast import broadcast_handler
from mpp_gateway.display import DisplayHub
from mpp_gateway.http import route


class DisplayStreamQuerySchema(Schema):
    agency = Id(
        load_default=None,
        metadata={"description": "Only this agency's calls (an agency display key implies it)"},
    )


class DisplayRoutes:
    display = DisplayHub()

    @broadcast_handler("queue", "ticket_called")
    def handle_ticket_called(self, envelope):
        self.display.publish(envelope)

    @broadcast_handler("queue", "ticket_recalled")
    def handle_ticket_recalled(self, envelope):
        self.display.publish(envelope)

    @route(
        "GET",
        "/v1/display/stream",
        roles=("display",),
        query=DisplayStreamQuerySchema,
        media_type="text/event-stream",
        summary="Calls as Server-Sent Events (ticket_called, ticket_recalled; heartbeats; "
        "Last-Event-ID resumes; a resync event means: fetch /v1/display again)",
    )
    def display_stream(self, request, principal):
        agency = shared(DisplayStreamQuerySchema).load(dict(request.args))["agency"]
        if principal.agency_id is not None:
            if agency not in (None, principal.agency_id):
                raise Forbidden("FORBIDDEN", "this display key shows one agency only")
            agency = principal.agency_id
        # eventlet.wsgi buffers 4 KiB before writing: flush every event at once instead
        request.environ["eventlet.minimum_write_chunk_size"] = 0
        last_id = request.headers.get("Last-Event-ID") or request.args.get("last_event_id")
        return Response(
            self.display.stream(agency, last_id),
            mimetype="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )
