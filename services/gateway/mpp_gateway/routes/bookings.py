"""Gateway routes: booking slots, bookings, kiosk check-in."""

from __future__ import annotations

from mpp_contracts import rpc as contracts
from mpp_gateway import idempotency
from mpp_gateway.http import read_json, route
from mpp_gateway.responses import ok
from mpp_gateway.schemas.queue import BookingSchema, CheckInSchema, SlotsSchema


class BookingsRoutes:
    @route(
        "GET",
        "/v1/services/{service}/slots",
        query=contracts.SlotsQuerySchema,
        response=SlotsSchema,
        summary="A day's booking slots with remaining capacity (date: the mall's local day)",
    )
    def list_slots(self, request, principal, service):
        args = {k: v for k, v in request.args.items() if v != ""}
        contracts.shared(contracts.SlotsQuerySchema).load(args)
        return ok(self.queue_rpc.list_slots(service, args.get("date")))

    @route(
        "POST",
        "/v1/bookings",
        body=contracts.BookingCreateSchema,
        response=BookingSchema,
        status=201,
        idempotent=True,
        summary="Book a slot (NIK required: 3 no-shows in 30 days block booking for a while)",
    )
    def create_booking(self, request, principal):
        data = read_json(request)  # as sent (validated by route): the queue loads it
        # with an Idempotency-Key the queue books once per key: a retry that took over an
        # abandoned claim gets the booking the first attempt made
        key = idempotency.request_key(request)
        return ok(self.queue_rpc.create_booking(data, request_key=key), 201)

    @route(
        "GET",
        "/v1/bookings/{booking}",
        response=BookingSchema,
        summary="A booking by its unguessable id",
    )
    def get_booking(self, request, principal, booking):
        return ok(self.queue_rpc.get_booking(booking))

    @route(
        "DELETE",
        "/v1/bookings/{booking}",
        response=BookingSchema,
        summary="Cancel a booking; its place goes back to the slot",
    )
    def cancel_booking(self, request, principal, booking):
        return ok(self.queue_rpc.cancel_booking(booking))

    @route(
        "POST",
        "/v1/bookings/{booking}/check-in",
        response=CheckInSchema,
        status=201,
        idempotent=True,
        summary="Check in at a kiosk: on time gives a ticket called at the slot; too early is "
        "409 TOO_EARLY; late gives a walk-in ticket in the normal line. With an "
        "Idempotency-Key a kiosk's retry gets the first answer (its ticket), not a 409",
    )
    def check_in_booking(self, request, principal, booking):
        key = idempotency.request_key(request)
        return ok(self.queue_rpc.check_in_booking(booking, request_key=key), 201)
