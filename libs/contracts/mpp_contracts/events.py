"""Event types, their versions and payload schemas: the map in docs/events.md, as code.

Payloads carry plain JSON types only: money as integer rupiah, times as ISO-8601 strings with
offset, identifiers as strings. No payload ever carries a NIK. Changes are additive; a breaking
change is a new version (bump ``version`` and keep reading the old one) or a new event type.
"""

from __future__ import annotations

from dataclasses import dataclass

from marshmallow import Schema, fields, validate

Money = fields.Integer
Time = fields.AwareDateTime


class AgencyRegisteredSchema(Schema):
    agency_id = fields.String(required=True)
    code = fields.String(required=True)
    name = fields.String(required=True)


class ServiceSchema(Schema):
    service_id = fields.String(required=True)
    agency_id = fields.String(required=True)
    code = fields.String(required=True)
    name = fields.String(required=True)
    fee_idr = Money(required=True, validate=validate.Range(min=0))
    sla_minutes = fields.Integer(required=True)
    prefix = fields.String(required=True)
    active = fields.Boolean(load_default=True)
    requirements = fields.List(fields.String(), load_default=list)
    daily_quota = fields.Integer(allow_none=True, load_default=None)
    # the service's version in the queue, +1 on every change: a consumer's copy never takes an
    # older one over a newer (events of several relays arrive in any order); None before 2026-12
    version = fields.Integer(allow_none=True, load_default=None, validate=validate.Range(min=1))


class ServiceUnpluggedSchema(Schema):
    service_id = fields.String(required=True)
    agency_id = fields.String(required=True)
    unplugged_at = Time(allow_none=True, load_default=None)
    waiting_tickets = fields.Integer(allow_none=True, load_default=None)


class CounterSchema(Schema):
    counter_id = fields.String(required=True)
    agency_id = fields.String(required=True)
    name = fields.String(required=True)
    service_ids = fields.List(fields.String(), required=True)
    is_open = fields.Boolean(allow_none=True, load_default=None)


class TicketSchema(Schema):
    """Fields every ticket event carries, so consumers need no lookup."""

    ticket_id = fields.String(required=True)
    journey_id = fields.String(required=True)
    number = fields.String(required=True)
    agency_id = fields.String(required=True)
    service_id = fields.String(required=True)
    service_code = fields.String(required=True)
    priority = fields.String(allow_none=True, load_default=None)
    issued_at = Time(required=True)


class TicketIssuedSchema(TicketSchema):
    booking_id = fields.String(allow_none=True, load_default=None)
    transferred_from = fields.String(allow_none=True, load_default=None)
    queued_at = Time(allow_none=True, load_default=None)


class TicketCalledSchema(TicketSchema):
    counter_id = fields.String(required=True)
    counter_name = fields.String(required=True)
    call_count = fields.Integer(required=True)
    called_at = Time(required=True)
    announcement = fields.String(required=True)
    spoken_announcement = fields.String(allow_none=True, load_default=None)
    out_of_order = fields.Boolean(load_default=False)


class TicketServingSchema(TicketSchema):
    counter_id = fields.String(required=True)
    started_at = Time(required=True)


class TicketCompletedSchema(TicketSchema):
    counter_id = fields.String(required=True)
    officer_id = fields.String(allow_none=True, load_default=None)
    fee_idr = Money(required=True, validate=validate.Range(min=0))
    called_at = Time(required=True)
    started_at = Time(required=True)
    completed_at = Time(required=True)
    waiting_seconds = fields.Integer(required=True)
    serving_seconds = fields.Integer(required=True)
    # the payment service's verdict for the catalogue version in force at completion, when the
    # queue holds it (payment_terms_set): false = routed as ``ticket_completed.free``, nothing to
    # pay. Absent (None) = routed as ``ticket_completed``: the payment service decides
    payment_required = fields.Boolean(allow_none=True, load_default=None)
    payment_terms_version = fields.Integer(
        allow_none=True, load_default=None, validate=validate.Range(min=1)
    )
    # SHA-256 (64 lower-case hex) of the ticket's access code: the payment service serves the
    # invoice to whoever presents a code with this digest, without the queue's key. The code
    # carries 132 bits, so the digest cannot be reversed, and it opens nothing by itself.
    # Absent (None) from a queue before 2026-12-06: the gateway asks the queue instead
    access_digest = fields.String(
        allow_none=True, load_default=None, validate=validate.Regexp(r"^[0-9a-f]{64}$")
    )


class TicketEndedSchema(TicketSchema):
    """no_show and cancel: the visit ended without service."""

    counter_id = fields.String(allow_none=True, load_default=None)
    ended_at = Time(required=True)
    reason = fields.String(allow_none=True, load_default=None)


class TicketTransferredSchema(TicketSchema):
    counter_id = fields.String(allow_none=True, load_default=None)
    new_ticket_id = fields.String(required=True)
    new_number = fields.String(required=True)
    to_agency_id = fields.String(required=True)
    to_service_id = fields.String(required=True)
    transferred_at = Time(required=True)


class SlaBreachedSchema(TicketSchema):
    sla_minutes = fields.Integer(required=True)
    stage = fields.String(required=True, validate=validate.OneOf(["waiting", "serving"]))
    breached_at = Time(required=True)


class BookingSchema(Schema):
    booking_id = fields.String(required=True)
    agency_id = fields.String(required=True)
    service_id = fields.String(required=True)
    slot_start = Time(required=True)
    status = fields.String(required=True)
    ticket_id = fields.String(allow_none=True, load_default=None)


class PaymentSchema(Schema):
    payment_id = fields.String(required=True)
    ticket_id = fields.String(required=True)
    agency_id = fields.String(required=True)
    service_id = fields.String(required=True)
    amount_idr = Money(required=True, validate=validate.Range(min=0))
    status = fields.String(required=True)
    method = fields.String(allow_none=True, load_default=None)
    provider = fields.String(required=True)


class CompletionFacts(Schema):
    """Who served the visit and when, as the queue's ``ticket_completed`` said: the payment
    service passes them on with its verdict, so the rating service invites a visit the payment
    service settles from that one fact (decision 0015). Absent (None) from a payment service
    before 2026-12-06, or for an invoice it opened before then: the rating service waits for the
    completion itself."""

    counter_id = fields.String(allow_none=True, load_default=None)
    officer_id = fields.String(allow_none=True, load_default=None)
    completed_at = Time(allow_none=True, load_default=None)


class PaymentSucceededSchema(PaymentSchema, CompletionFacts):
    pass


class PaymentNotRequiredSchema(CompletionFacts):
    """The payment service's verdict that a completed ticket owes nothing (its service's fee in
    force at completion is 0): the ticket is settled without an invoice."""

    ticket_id = fields.String(required=True)
    agency_id = fields.String(required=True)
    service_id = fields.String(required=True)


class PaymentTermsSetSchema(Schema):
    """The payment service's verdict for one version of a service: whether a ticket completed
    while that version is in force needs paying (its fee then > 0). Sent when its copy of the
    catalogue takes a new version; the queue routes completions by it."""

    service_id = fields.String(required=True)
    agency_id = fields.String(required=True)
    version = fields.Integer(allow_none=True, load_default=None, validate=validate.Range(min=1))
    payment_required = fields.Boolean(required=True)


class PaymentRefundedSchema(PaymentSchema):
    refund_id = fields.String(required=True)
    refund_amount_idr = Money(required=True, validate=validate.Range(min=1))
    refunded_total_idr = Money(required=True)


class PaymentFlaggedSchema(PaymentSchema):
    flag = fields.String(required=True)


class RatingInvitedSchema(Schema):
    ticket_id = fields.String(required=True)
    agency_id = fields.String(required=True)
    service_id = fields.String(required=True)
    token = fields.String(required=True)
    expires_at = Time(required=True)
    counter_id = fields.String(allow_none=True, load_default=None)
    officer_id = fields.String(allow_none=True, load_default=None)


class RatingSubmittedSchema(Schema):
    rating_id = fields.String(required=True)
    ticket_id = fields.String(required=True)
    agency_id = fields.String(required=True)
    service_id = fields.String(required=True)
    counter_id = fields.String(allow_none=True, load_default=None)
    officer_id = fields.String(allow_none=True, load_default=None)
    stars = fields.Integer(required=True, validate=validate.Range(min=1, max=5))
    answers = fields.Dict(keys=fields.String(), values=fields.Integer(), load_default=dict)
    submitted_at = Time(required=True)
    flagged = fields.Boolean(load_default=False)  # the citizen asked for a complaint
    has_comment = fields.Boolean(load_default=False)  # the text itself never travels in events


class ComplaintSchema(Schema):
    complaint_id = fields.String(required=True)
    agency_id = fields.String(required=True)
    rating_id = fields.String(allow_none=True, load_default=None)
    status = fields.String(required=True)
    occurred_at = Time(required=True)
    ticket_id = fields.String(allow_none=True, load_default=None)
    service_id = fields.String(allow_none=True, load_default=None)
    reason = fields.String(allow_none=True, load_default=None)  # low_stars | flagged
    disputed = fields.Boolean(load_default=False)
    first_response_due = Time(allow_none=True, load_default=None)
    resolution_due = Time(allow_none=True, load_default=None)
    escalated_for = fields.String(allow_none=True, load_default=None)  # the missed deadline


@dataclass(frozen=True)
class EventSpec:
    source: str
    version: int
    schema: type[Schema]


def _specs(source: str, schema: type[Schema], *names: str) -> dict[str, EventSpec]:
    return {name: EventSpec(source, 1, schema) for name in names}


EVENT_TYPES: dict[str, EventSpec] = {
    **_specs("queue", AgencyRegisteredSchema, "agency_registered"),
    **_specs("queue", ServiceSchema, "service_plugged", "service_updated"),
    **_specs("queue", ServiceUnpluggedSchema, "service_unplugged"),
    **_specs("queue", CounterSchema, "counter_opened", "counter_closed", "counter_updated"),
    **_specs("queue", TicketIssuedSchema, "ticket_issued"),
    **_specs("queue", TicketCalledSchema, "ticket_called", "ticket_recalled"),
    **_specs("queue", TicketServingSchema, "ticket_serving"),
    **_specs("queue", TicketCompletedSchema, "ticket_completed"),
    **_specs("queue", TicketEndedSchema, "ticket_no_show", "ticket_cancelled"),
    **_specs("queue", TicketTransferredSchema, "ticket_transferred"),
    **_specs("queue", SlaBreachedSchema, "sla_breached"),
    **_specs(
        "queue",
        BookingSchema,
        "booking_created",
        "booking_cancelled",
        "booking_checked_in",
        "booking_no_show",
    ),
    **_specs(
        "payment",
        PaymentSchema,
        "payment_requested",
        "payment_failed",
        "payment_expired",
    ),
    **_specs("payment", PaymentSucceededSchema, "payment_succeeded"),
    **_specs("payment", PaymentNotRequiredSchema, "payment_not_required"),
    **_specs("payment", PaymentTermsSetSchema, "payment_terms_set"),
    **_specs("payment", PaymentRefundedSchema, "payment_refunded"),
    **_specs("payment", PaymentFlaggedSchema, "payment_flagged"),
    **_specs("rating", RatingInvitedSchema, "rating_invited"),
    **_specs("rating", RatingSubmittedSchema, "rating_submitted"),
    **_specs(
        "rating",
        ComplaintSchema,
        "complaint_opened",
        "complaint_responded",
        "complaint_escalated",
        "complaint_resolved",
    ),
}


CONSUMED: frozenset[str] = frozenset(
    {
        "agency_registered",
        "service_plugged",
        "service_updated",
        "ticket_called",
        "ticket_recalled",
        "ticket_completed",
        "payment_terms_set",
        "payment_requested",
        "payment_succeeded",
        "payment_not_required",
        "rating_invited",
    }
)
"""The event types a service of the mall consumes (tests/contracts/test_events_doc.py keeps it
equal to the handlers). The outbox relay publishes them ``mandatory`` and parks one that no queue
took (its consumer is not deployed yet); every other type is a fact for whoever listens
(dashboards), sent once whether or not a queue is bound (docs/events.md)."""
