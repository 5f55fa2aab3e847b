"""Request schemas of the services' RPC methods, shared by the gateway (HTTP validation and the
OpenAPI document) and the services (loading RPC arguments). One schema validates both ends."""

from __future__ import annotations

import functools

from marshmallow import RAISE, Schema, fields, validate

from mpp_contracts import pagination

PRIORITY_CATEGORIES = ("elderly", "disability", "pregnant", "nursing", "children")
TICKET_ACTIONS = ("call", "recall", "start", "complete", "no-show", "transfer", "cancel")


class StrictSchema(Schema):
    class Meta:
        unknown = RAISE


class AgencyCreateSchema(StrictSchema):
    code = fields.String(
        required=True,
        validate=validate.Regexp(r"^[A-Z0-9-]{2,16}$"),
        metadata={"description": "Short agency code, e.g. DUKCAPIL", "example": "DUKCAPIL"},
    )
    name = fields.String(required=True, validate=validate.Length(min=2, max=120))


_HHMM = validate.Regexp(r"^([01][0-9]|2[0-3]):[0-5][0-9]$")


class OpeningPeriodSchema(StrictSchema):
    """One local opening period of a service's day; a break is the gap between two periods."""

    opens = fields.String(required=True, validate=_HHMM, metadata={"example": "08:00"})
    closes = fields.String(required=True, validate=_HHMM, metadata={"example": "12:00"})


class BookingRulesSchema(StrictSchema):
    """How a service takes online bookings: slots cut from its opening hours."""

    slot_minutes = fields.Integer(required=True, validate=validate.Range(min=5, max=480))
    capacity = fields.Integer(required=True, validate=validate.Range(min=1, max=1000))
    daily_quota = fields.Integer(
        load_default=None, allow_none=True, validate=validate.Range(min=1, max=100_000)
    )
    early_minutes = fields.Integer(load_default=30, validate=validate.Range(min=0, max=240))
    late_minutes = fields.Integer(load_default=15, validate=validate.Range(min=0, max=240))


class ServiceCreateSchema(StrictSchema):
    code = fields.String(required=True, validate=validate.Regexp(r"^[A-Z0-9-]{2,24}$"))
    name = fields.String(required=True, validate=validate.Length(min=2, max=120))
    fee_idr = fields.Integer(required=True, validate=validate.Range(min=0, max=100_000_000))
    sla_minutes = fields.Integer(required=True, validate=validate.Range(min=1, max=10_080))
    prefix = fields.String(required=True, validate=validate.Regexp(r"^[A-Z]{1,3}$"))
    requirements = fields.List(fields.String(validate=validate.Length(max=200)), load_default=list)
    daily_quota = fields.Integer(load_default=None, allow_none=True, validate=validate.Range(min=1))
    opening_hours = fields.List(
        fields.Nested(OpeningPeriodSchema), load_default=None, allow_none=True
    )
    booking = fields.Nested(BookingRulesSchema, load_default=None, allow_none=True)


class ServiceUpdateSchema(StrictSchema):
    """``PATCH``: only the fields sent change; tickets already issued keep their number and fee."""

    name = fields.String(validate=validate.Length(min=2, max=120))
    fee_idr = fields.Integer(validate=validate.Range(min=0, max=100_000_000))
    sla_minutes = fields.Integer(validate=validate.Range(min=1, max=10_080))
    prefix = fields.String(validate=validate.Regexp(r"^[A-Z]{1,3}$"))
    requirements = fields.List(fields.String(validate=validate.Length(max=200)))
    daily_quota = fields.Integer(allow_none=True, validate=validate.Range(min=1))
    opening_hours = fields.List(fields.Nested(OpeningPeriodSchema), allow_none=True)
    booking = fields.Nested(BookingRulesSchema, allow_none=True)


class CounterCreateSchema(StrictSchema):
    name = fields.String(required=True, validate=validate.Length(min=1, max=40))
    service_ids = fields.List(fields.String(), required=True, validate=validate.Length(min=1))
    is_open = fields.Boolean(load_default=True)


class CounterUpdateSchema(StrictSchema):
    """``PATCH``: rename, change the services served, open or close. Tickets are never lost."""

    name = fields.String(validate=validate.Length(min=1, max=40))
    service_ids = fields.List(fields.String(), validate=validate.Length(min=1))
    is_open = fields.Boolean()


class TicketCreateSchema(StrictSchema):
    service_id = fields.String(required=True)
    priority = fields.String(
        load_default=None, allow_none=True, validate=validate.OneOf(PRIORITY_CATEGORIES)
    )
    nik = fields.String(
        load_default=None,
        allow_none=True,
        metadata={"description": "Optional NIK; stored only as a keyed hash and its last 4 digits"},
    )
    phone = fields.String(
        load_default=None, allow_none=True, validate=validate.Regexp(r"^\+?[0-9]{8,15}$")
    )


class TicketActionSchema(StrictSchema):
    """Body of ``POST /v1/tickets/{ticket}/{action}``; only ``transfer`` needs a target."""

    to_service_id = fields.String(load_default=None, allow_none=True)
    reason = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=200))
    counter_id = fields.String(
        load_default=None,
        allow_none=True,
        metadata={"description": "For ``call``: the counter calling this ticket out of order"},
    )


class BookingCreateSchema(StrictSchema):
    """Book a slot. The NIK is required: the no-show penalty follows the citizen, matched by a
    keyed hash of it (the number itself is never stored)."""

    service_id = fields.String(required=True)
    slot_start = fields.AwareDateTime(
        required=True, metadata={"description": "Start of a slot from GET …/slots"}
    )
    nik = fields.String(required=True, validate=validate.Length(equal=16))
    phone = fields.String(
        load_default=None, allow_none=True, validate=validate.Regexp(r"^\+?[0-9]{8,15}$")
    )
    priority = fields.String(
        load_default=None, allow_none=True, validate=validate.OneOf(PRIORITY_CATEGORIES)
    )


class SlotsQuerySchema(StrictSchema):
    date = fields.Date(load_default=None, allow_none=True, metadata={"example": "2026-11-30"})


class ServicesQuerySchema(pagination.PageQuerySchema):
    agency = fields.String(load_default=None, allow_none=True)


class DisplayQuerySchema(StrictSchema):
    agency = fields.String(load_default=None, allow_none=True)
    recent = fields.Integer(load_default=10, validate=validate.Range(min=1, max=50))


class StatsQuerySchema(StrictSchema):
    agency = fields.String(load_default=None, allow_none=True)
    date = fields.Date(load_default=None, allow_none=True, metadata={"example": "2026-11-30"})


class RatingCreateSchema(StrictSchema):
    token = fields.String(required=True, validate=validate.Length(min=16, max=128))
    stars = fields.Integer(required=True, validate=validate.Range(min=1, max=5))
    answers = fields.Dict(
        keys=fields.String(validate=validate.OneOf([f"U{i}" for i in range(1, 10)])),
        values=fields.Integer(validate=validate.Range(min=1, max=4)),
        load_default=dict,
    )
    comment = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=1000))
    flag_complaint = fields.Boolean(load_default=False)


RATING_PERIODS = ("day", "week", "month")
_ISO_DATE = {"format": "iso"}


class RatingSummaryQuerySchema(StrictSchema):
    """Filters of ``GET /v1/ratings/summary``: the most specific id given selects the figures;
    ``period`` (+ ``date``, default today) reads one day/week/month, ``from``/``to`` a custom range
    of local days (both inclusive)."""

    agency = fields.String(load_default=None)
    service = fields.String(load_default=None)
    counter = fields.String(load_default=None)
    officer = fields.String(load_default=None)
    period = fields.String(load_default=None, validate=validate.OneOf(RATING_PERIODS))
    date = fields.Date(load_default=None, **_ISO_DATE)
    from_ = fields.Date(data_key="from", load_default=None, **_ISO_DATE)
    to = fields.Date(load_default=None, **_ISO_DATE)


class LeaderboardQuerySchema(StrictSchema):
    period = fields.String(
        load_default="month",
        validate=validate.Regexp(r"^(day|week|month|year|\d{4}-(0[1-9]|1[0-2]))$"),
        metadata={"description": "day, week, month, year or YYYY-MM (mall's local calendar)"},
    )


class ComplaintListQuerySchema(pagination.PageQuerySchema):
    status = fields.String(
        load_default=None, validate=validate.OneOf(["open", "responded", "resolved", "escalated"])
    )


class ComplaintResponseCreateSchema(StrictSchema):
    """An agency's answer to a complaint; ``resolve`` also closes it (a first answer may);
    ``dispute`` classifies it as a dispute (sengketa): resolution due 14 days after opening."""

    message = fields.String(required=True, validate=validate.Length(min=1, max=2000))
    resolve = fields.Boolean(load_default=False)
    dispute = fields.Boolean(load_default=False)


class RefundCreateSchema(StrictSchema):
    amount_idr = fields.Integer(required=True, validate=validate.Range(min=1))
    reason = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=200))


PAYMENT_METHODS = ("qris", "virtual_account", "ewallet")


class PaymentMethodSchema(StrictSchema):
    """Body of ``POST /v1/payments/{payment}/method``: the citizen picks how to pay."""

    method = fields.String(required=True, validate=validate.OneOf(PAYMENT_METHODS))


class SettlementQuerySchema(Schema):
    """Query of ``GET /v1/agencies/{agency}/settlements`` (and ``/reconciliation``)."""

    date = fields.Date(load_default=None, metadata={"description": "mall-local day, YYYY-MM-DD"})


@functools.cache
def shared(schema_class: type[Schema], **options) -> Schema:
    """One instance per schema class (and options), reused by every call.

    Building a marshmallow schema costs more than loading a small body with it; an instance keeps
    no state between ``load`` calls (marshmallow 4 has no context), so sharing it is safe.
    """
    return schema_class(**options)


def load(schema: Schema | type[Schema], data: dict | None) -> dict:
    """Load RPC arguments; field errors become the contract's ``ValidationFailed``."""
    from marshmallow import ValidationError

    from mpp_contracts.errors import ValidationFailed

    if isinstance(schema, type):
        schema = shared(schema)
    try:
        return schema.load(data or {})
    except ValidationError as exc:
        raise ValidationFailed(
            "VALIDATION_FAILED", "invalid fields", exc.normalized_messages()
        ) from None


REQUEST_KEY_MAX = 64  # the gateway sends a SHA-256 in hex; services store it in a column this wide


def request_key(value: object) -> str | None:
    """Load the optional ``request_key`` argument of a creating RPC (take-ticket, create-booking,
    submit-rating): the gateway's hash of a client's ``Idempotency-Key``, its scope and the body,
    by which a service knows a retried request again. ``None`` when the client sent no key."""
    from mpp_contracts.errors import ValidationFailed

    if value is None or (isinstance(value, str) and 1 <= len(value) <= REQUEST_KEY_MAX):
        return value
    raise ValidationFailed(
        "VALIDATION_FAILED",
        "invalid request key",
        {"request_key": [f"1 to {REQUEST_KEY_MAX} characters"]},
    )
