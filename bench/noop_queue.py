"""A queue service that does no work: how much of a take-ticket is the gateway's own share.

``bench/run.py`` (part ``noop``) stops the real queue and starts this in its place on the same
vhost, then loads ``POST /v1/tickets`` through the unchanged gateway exactly like the closed loop.
Its answer has the keys and about the size of a real virtual ticket, built without a database, an
outbox or an event: what is left is the gateway (key check, rate limit, validation, request log,
metrics) and one RPC. Against the ceiling, that figure splits take-ticket's gap into the
gateway's part and the part the queue's real work (PostgreSQL, outbox, event) costs.
"""

from __future__ import annotations

import itertools
import uuid
from datetime import UTC, datetime

from nameko.rpc import rpc
from nameko.web.handlers import http
from werkzeug.wrappers import Response

_numbers = itertools.count(1)


def virtual_ticket(service_id: str, number: int, now: datetime | None = None) -> dict:
    """A waiting walk-in ticket as ``mpp_queue.usecases.tickets.ticket_view`` shapes one."""
    issued = (now or datetime.now(UTC)).isoformat()
    return {
        "id": str(uuid.uuid4()),
        "journey_id": str(uuid.uuid4()),
        "number": f"T-{number:03d}",
        "status": "waiting",
        "agency_id": str(uuid.UUID(int=1)),
        "service_id": service_id,
        "service_code": "THRU",
        "service_name": "Layanan THRU",
        "priority": None,
        "nik_last4": None,
        "issued_at": issued,
        "queued_at": issued,
        "called_at": None,
        "last_called_at": None,
        "started_at": None,
        "completed_at": None,
        "ended_at": None,
        "call_count": 0,
        "counter_id": None,
        "counter_name": None,
        "position": number,
        "ahead": number - 1,
        "estimated_wait_minutes": 5 * (number - 1),
        "fee_idr": 0,
        "booking_id": None,
        "booked_slot_start": None,
        "transferred_from": None,
        "transferred_to": None,
        "sla": {"minutes": 60, "deadline": None, "breached": False},
        "payment": None,
        "rating": None,
    }


class NoopQueue:
    name = "queue"

    @rpc
    def take_ticket(self, data: dict, request_key: str | None = None) -> dict:
        return virtual_ticket(data["service_id"], next(_numbers))

    @http("GET", "/healthz")
    def healthz(self, request) -> Response:
        return Response('{"status": "ok"}', mimetype="application/json")
