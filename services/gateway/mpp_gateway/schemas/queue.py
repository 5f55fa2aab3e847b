"""Answers of the queue routes (OpenAPI): catalogue, tickets, bookings, display and KPIs.

Times are ISO-8601 strings with offset; money is integer rupiah. No answer carries a NIK: only
its last four digits (tickets) or a masked form (bookings).
"""

from __future__ import annotations

from marshmallow import Schema, fields

from mpp_contracts.bounds import Pattern
from mpp_contracts.rpc import BookingRulesSchema, OpeningPeriodSchema
from mpp_gateway.schemas.apikeys import ApiKeyIssuedSchema

Time = fields.String  # ISO-8601 with offset


class AgencySchema(Schema):
    id = fields.String(required=True)
    code = fields.String(required=True, metadata={"example": "DUKCAPIL"})
    name = fields.String(required=True)


class AgencyCreatedSchema(AgencySchema):
    admin_api_key = fields.Nested(
        ApiKeyIssuedSchema, required=True, metadata={"description": "The first agency_admin key"}
    )


class ServiceSchema(Schema):
    id = fields.String(required=True)
    agency_id = fields.String(required=True)
    code = fields.String(required=True, metadata={"example": "KTP-EL"})
    name = fields.String(required=True)
    fee_idr = fields.Integer(required=True)
    sla_minutes = fields.Integer(required=True)
    prefix = fields.String(required=True, metadata={"example": "A"})
    requirements = fields.List(fields.String(), required=True)
    daily_quota = fields.Integer(allow_none=True, required=True)
    opening_hours = fields.List(fields.Nested(OpeningPeriodSchema), allow_none=True)
    booking = fields.Nested(BookingRulesSchema, allow_none=True)
    active = fields.Boolean(required=True)
    unplugged_at = Time(allow_none=True)


class CounterSchema(Schema):
    id = fields.String(required=True)
    agency_id = fields.String(required=True)
    name = fields.String(required=True, metadata={"example": "Loket 3"})
    service_ids = fields.List(fields.String(), required=True)
    is_open = fields.Boolean(required=True)


ACCESS_CODE_PATTERN = r"^[A-Za-z0-9_-]{22}$"


class TicketLinkSchema(Schema):
    id = fields.String(required=True)
    number = fields.String(allow_none=True)
    href = fields.String(required=True)
    access_code = fields.String(
        allow_none=True, metadata={"description": "The new ticket's code (to its holder only)"}
    )


class TicketPaymentSchema(Schema):
    id = fields.String(required=True)
    status = fields.String(allow_none=True)
    href = fields.String(required=True)


class TicketRatingSchema(Schema):
    token = fields.String(
        allow_none=True,
        metadata={"description": "The citizen's one-time rating token: to the code holder only"},
    )
    expires_at = Time(allow_none=True)
    href = fields.String(required=True)


class TicketSlaSchema(Schema):
    minutes = fields.Integer(allow_none=True)
    deadline = Time(allow_none=True)
    breached = fields.Boolean(required=True)


class TicketSchema(Schema):
    """The virtual ticket: status, number, place in line and estimated wait, payment, rating."""

    id = fields.String(required=True, metadata={"description": "Unguessable; the ticket's URL"})
    access_code = fields.String(
        allow_none=True,
        metadata={
            "description": "The citizen's capability over this ticket (for its QR link): "
            "given to whoever took it and to the holder of the code; null for staff"
        },
    )
    journey_id = fields.String(
        required=True, metadata={"description": "Kept across transfers: one visit, one journey"}
    )
    number = fields.String(required=True, metadata={"example": "A-012"})
    status = fields.String(
        required=True,
        metadata={
            "description": "waiting, called, serving, done, no_show, cancelled or transferred"
        },
    )
    agency_id = fields.String(required=True)
    service_id = fields.String(required=True)
    service_code = fields.String(allow_none=True)
    service_name = fields.String(allow_none=True)
    priority = fields.String(allow_none=True)
    nik_last4 = fields.String(allow_none=True)
    issued_at = Time(required=True)
    queued_at = Time(allow_none=True)
    called_at = Time(allow_none=True)
    last_called_at = Time(allow_none=True)
    started_at = Time(allow_none=True)
    completed_at = Time(allow_none=True)
    ended_at = Time(allow_none=True)
    call_count = fields.Integer()
    counter_id = fields.String(allow_none=True)
    counter_name = fields.String(allow_none=True)
    position = fields.Integer(
        allow_none=True, metadata={"description": "1 = called next; null unless waiting"}
    )
    ahead = fields.Integer(allow_none=True)
    estimated_wait_minutes = fields.Integer(
        allow_none=True, metadata={"description": "null when no counter serving it is open"}
    )
    fee_idr = fields.Integer(required=True)
    booking_id = fields.String(allow_none=True)
    booked_slot_start = Time(allow_none=True)
    transferred_from = fields.String(allow_none=True)
    transferred_to = fields.Nested(TicketLinkSchema, allow_none=True)
    sla = fields.Nested(TicketSlaSchema)
    payment = fields.Nested(TicketPaymentSchema, allow_none=True)
    rating = fields.Nested(TicketRatingSchema, allow_none=True)


class SlotSchema(Schema):
    start = Time(required=True)
    end = Time(required=True)
    capacity = fields.Integer(required=True)
    booked = fields.Integer(required=True)
    remaining = fields.Integer(required=True)
    bookable = fields.Boolean(required=True)


class SlotsSchema(Schema):
    service_id = fields.String(required=True)
    date = fields.String(required=True)
    daily_quota = fields.Integer(allow_none=True)
    quota_left = fields.Integer(allow_none=True)
    items = fields.List(fields.Nested(SlotSchema), required=True)


class BookingSchema(Schema):
    id = fields.String(required=True, metadata={"description": "Unguessable; the booking's URL"})
    agency_id = fields.String(required=True)
    service_id = fields.String(required=True)
    status = fields.String(
        required=True, metadata={"description": "booked, checked_in, late, cancelled or no_show"}
    )
    slot_start = Time(required=True)
    slot_end = Time(required=True)
    check_in_opens_at = Time(required=True)
    check_in_closes_at = Time(required=True)
    nik = fields.String(required=True, metadata={"example": "************0003"})
    priority = fields.String(allow_none=True)
    ticket_id = fields.String(allow_none=True)
    created_at = Time(required=True)
    ended_at = Time(allow_none=True)


class CheckInSchema(Schema):
    booking = fields.Nested(BookingSchema, required=True)
    ticket = fields.Nested(TicketSchema, required=True)


class CurrentCallSchema(Schema):
    number = fields.String(required=True)
    status = fields.String(required=True)
    service_id = fields.String(required=True)
    called_at = Time(required=True)
    announcement = fields.String(allow_none=True)


class DisplayCounterSchema(Schema):
    counter_id = fields.String(required=True)
    counter_name = fields.String(required=True)
    agency_id = fields.String(required=True)
    is_open = fields.Boolean(required=True)
    current = fields.Nested(CurrentCallSchema, allow_none=True)


class DisplayCallSchema(Schema):
    number = fields.String(required=True)
    counter_id = fields.String(required=True)
    counter_name = fields.String(allow_none=True)
    agency_id = fields.String(required=True)
    kind = fields.String(required=True, metadata={"description": "call or recall"})
    called_at = Time(required=True)
    announcement = fields.String(
        required=True, metadata={"example": "Nomor antrean A-012, silakan menuju loket 3"}
    )
    spoken_announcement = fields.String(
        metadata={
            "description": "The announcement with letters named and numbers in words, for "
            "text-to-speech",
            "example": "Nomor antrean A, dua belas, silakan menuju loket tiga",
        }
    )


class DisplaySnapshotSchema(Schema):
    generated_at = Time(required=True)
    date = fields.String(required=True)
    agency_id = fields.String(allow_none=True)
    counters = fields.List(fields.Nested(DisplayCounterSchema), required=True)
    recent_calls = fields.List(fields.Nested(DisplayCallSchema), required=True)


class DurationStatsSchema(Schema):
    count = fields.Integer(required=True)
    mean_seconds = fields.Float(allow_none=True)
    median_seconds = fields.Float(allow_none=True, metadata={"description": "nearest rank"})
    p90_seconds = fields.Float(allow_none=True, metadata={"description": "nearest rank"})


class KpiSchema(Schema):
    agency_id = fields.String()
    service_id = fields.String()
    counter_id = fields.String()
    tickets = fields.Integer(required=True)
    waiting = fields.Nested(DurationStatsSchema, required=True)
    serving = fields.Nested(DurationStatsSchema, required=True)
    served = fields.Integer(required=True)
    no_shows = fields.Integer(required=True)
    transfers = fields.Integer(required=True)
    cancelled = fields.Integer(required=True)
    sla_breaches = fields.Integer(required=True)


class HourStatsSchema(Schema):
    hour = fields.Integer(
        required=True, metadata={"description": "Local hour of the mall day, 0-23"}
    )
    taken = fields.Integer(required=True, metadata={"description": "Tickets issued in the hour"})
    served = fields.Integer(
        required=True, metadata={"description": "Tickets completed in the hour"}
    )
    waiting = fields.Nested(
        DurationStatsSchema,
        required=True,
        metadata={"description": "Waits (issue to first call) of the tickets issued in the hour"},
    )


class QueueStatsSchema(Schema):
    date = fields.String(required=True)
    agency_id = fields.String(allow_none=True)
    timezone = fields.String(required=True)
    overall = fields.Nested(KpiSchema, required=True)
    by_agency = fields.List(fields.Nested(KpiSchema), required=True)
    by_service = fields.List(fields.Nested(KpiSchema), required=True)
    by_counter = fields.List(fields.Nested(KpiSchema), required=True)
    by_hour = fields.List(
        fields.Nested(HourStatsSchema),
        required=True,
        metadata={"description": "The day's 24 local hours, empty ones included"},
    )


class TicketReadQuerySchema(Schema):
    code = Pattern(
        ACCESS_CODE_PATTERN,
        max_length=22,
        metadata={"description": "The ticket's access code (from taking it, or its QR link)"},
    )


class LineTicketSchema(Schema):
    id = fields.String(required=True)
    number = fields.String(required=True, metadata={"example": "A-012"})
    service_id = fields.String(required=True)
    service_code = fields.String(allow_none=True)
    service_name = fields.String(allow_none=True)
    priority = fields.String(allow_none=True)
    queued_at = Time(required=True)
    booked_slot_start = Time(allow_none=True)
    waited_minutes = fields.Integer(required=True)
    sla_deadline = Time(allow_none=True)


class CounterLineSchema(Schema):
    counter = fields.Nested(CounterSchema, required=True)
    generated_at = Time(required=True)
    current = fields.List(
        fields.Nested(TicketSchema),
        required=True,
        metadata={"description": "Tickets this counter holds: called or being served"},
    )
    waiting = fields.List(
        fields.Nested(LineTicketSchema),
        required=True,
        metadata={"description": "Callable tickets in the order call-next takes them"},
    )
    waiting_count = fields.Integer(required=True)
    no_show_after_calls = fields.Integer(
        required=True,
        metadata={"description": "Calls (the first and its recalls) before a no-show is accepted"},
    )
