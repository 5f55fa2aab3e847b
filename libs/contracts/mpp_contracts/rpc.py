"""Request schemas of the services' RPC methods, shared by the gateway (HTTP validation and the
OpenAPI document) and the services (loading RPC arguments). One schema validates both ends."""

from __future__ import annotations

import functools

from marshmallow import RAISE, Schema, fields, validate

from mpp_contracts import pagination
from mpp_contracts.bounds import Day, Id, Int, Moment, Pattern, Text
from mpp_contracts.payments import PAYMENT_METHODS

PRIORITY_CATEGORIES = ("elderly", "disability", "pregnant", "nursing", "children")
TICKET_ACTIONS = ("call", "recall", "start", "complete", "no-show", "transfer", "cancel")


class StrictSchema(Schema):
    class Meta:
        unknown = RAISE


class AgencyCreateSchema(StrictSchema):
    code = Pattern(
        r"^[A-Z0-9-]{2,16}$",
        max_length=16,
        required=True,
        metadata={"description": "Short agency code, e.g. DUKCAPIL", "example": "DUKCAPIL"},
    )
    name = Text(min_length=2, max_length=120, required=True)


_HHMM = r"^([01][0-9]|2[0-3]):[0-5][0-9]$"
MAX_PERIODS = 12  # opening periods of one day
MAX_REQUIREMENTS = 50
MAX_COUNTER_SERVICES = 100


class OpeningPeriodSchema(StrictSchema):
    """One local opening period of a service's day; a break is the gap between two periods."""

    opens = Pattern(_HHMM, max_length=5, required=True, metadata={"example": "08:00"})
    closes = Pattern(_HHMM, max_length=5, required=True, metadata={"example": "12:00"})


class BookingRulesSchema(StrictSchema):
    """How a service takes online bookings: slots cut from its opening hours."""

    slot_minutes = Int(minimum=5, maximum=480, required=True)
    capacity = Int(minimum=1, maximum=1000, required=True)
    daily_quota = Int(minimum=1, maximum=100_000, load_default=None, allow_none=True)
    early_minutes = Int(minimum=0, maximum=240, load_default=30)
    late_minutes = Int(minimum=0, maximum=240, load_default=15)


MAX_FEE_IDR = 100_000_000
MAX_SLA_MINUTES = 10_080  # a week
MAX_DAILY_QUOTA = 100_000


def _requirements(**kwargs) -> fields.List:
    return fields.List(
        Text(max_length=200), validate=validate.Length(max=MAX_REQUIREMENTS), **kwargs
    )


def _opening_hours(**kwargs) -> fields.List:
    return fields.List(
        fields.Nested(OpeningPeriodSchema), validate=validate.Length(max=MAX_PERIODS), **kwargs
    )


class ServiceCreateSchema(StrictSchema):
    code = Pattern(r"^[A-Z0-9-]{2,24}$", max_length=24, required=True)
    name = Text(min_length=2, max_length=120, required=True)
    fee_idr = Int(minimum=0, maximum=MAX_FEE_IDR, required=True)
    sla_minutes = Int(minimum=1, maximum=MAX_SLA_MINUTES, required=True)
    prefix = Pattern(r"^[A-Z]{1,3}$", max_length=3, required=True)
    requirements = _requirements(load_default=list)
    daily_quota = Int(minimum=1, maximum=MAX_DAILY_QUOTA, load_default=None, allow_none=True)
    opening_hours = _opening_hours(load_default=None, allow_none=True)
    booking = fields.Nested(BookingRulesSchema, load_default=None, allow_none=True)


class ServiceUpdateSchema(StrictSchema):
    """``PATCH``: only the fields sent change; tickets already issued keep their number and fee."""

    name = Text(min_length=2, max_length=120)
    fee_idr = Int(minimum=0, maximum=MAX_FEE_IDR)
    sla_minutes = Int(minimum=1, maximum=MAX_SLA_MINUTES)
    prefix = Pattern(r"^[A-Z]{1,3}$", max_length=3)
    requirements = _requirements()
    daily_quota = Int(minimum=1, maximum=MAX_DAILY_QUOTA, allow_none=True)
    opening_hours = _opening_hours(allow_none=True)
    booking = fields.Nested(BookingRulesSchema, allow_none=True)


class CounterCreateSchema(StrictSchema):
    name = Text(min_length=1, max_length=40, required=True)
    service_ids = fields.List(
        Id(), required=True, validate=validate.Length(min=1, max=MAX_COUNTER_SERVICES)
    )
    is_open = fields.Boolean(load_default=True)


class CounterUpdateSchema(StrictSchema):
    """``PATCH``: rename, change the services served, open or close. Tickets are never lost."""

    name = Text(min_length=1, max_length=40)
    service_ids = fields.List(Id(), validate=validate.Length(min=1, max=MAX_COUNTER_SERVICES))
    is_open = fields.Boolean()


_PHONE = r"^\+?[0-9]{8,15}$"


class TicketCreateSchema(StrictSchema):
    service_id = Id(required=True)
    priority = fields.String(
        load_default=None, allow_none=True, validate=validate.OneOf(PRIORITY_CATEGORIES)
    )
    nik = Text(
        max_length=32,
        load_default=None,
        allow_none=True,
        metadata={"description": "Optional NIK; stored only as a keyed hash and its last 4 digits"},
    )
    phone = Pattern(_PHONE, max_length=16, load_default=None, allow_none=True)


class TicketActionSchema(StrictSchema):
    """Body of ``POST /v1/tickets/{ticket}/{action}``; only ``transfer`` needs a target."""

    to_service_id = Id(load_default=None, allow_none=True)
    reason = Text(max_length=200, load_default=None, allow_none=True)
    counter_id = Id(
        load_default=None,
        allow_none=True,
        metadata={"description": "For ``call``: the counter calling this ticket out of order"},
    )


class BookingCreateSchema(StrictSchema):
    """Book a slot. The NIK is required: the no-show penalty follows the citizen, matched by a
    keyed hash of it (the number itself is never stored)."""

    service_id = Id(required=True)
    slot_start = Moment(required=True, metadata={"description": "Start of a slot from GET …/slots"})
    nik = Text(min_length=16, max_length=16, required=True)
    phone = Pattern(_PHONE, max_length=16, load_default=None, allow_none=True)
    priority = fields.String(
        load_default=None, allow_none=True, validate=validate.OneOf(PRIORITY_CATEGORIES)
    )


class SlotsQuerySchema(StrictSchema):
    date = Day(load_default=None, allow_none=True, metadata={"example": "2026-11-30"})


class ServicesQuerySchema(pagination.PageQuerySchema):
    agency = Id(load_default=None, allow_none=True)


class DisplayQuerySchema(StrictSchema):
    agency = Id(load_default=None, allow_none=True)
    recent = Int(minimum=1, maximum=50, load_default=10)


class CounterLineQuerySchema(StrictSchema):
    limit = Int(
        minimum=1,
        maximum=50,
        load_default=20,
        metadata={"description": "How many callable tickets, in call order"},
    )


class StatsQuerySchema(StrictSchema):
    agency = Id(load_default=None, allow_none=True)
    date = Day(load_default=None, allow_none=True, metadata={"example": "2026-11-30"})


class RatingCreateSchema(StrictSchema):
    token = Text(min_length=16, max_length=128, required=True)
    stars = Int(minimum=1, maximum=5, required=True)
    answers = fields.Dict(
        keys=fields.String(validate=validate.OneOf([f"U{i}" for i in range(1, 10)])),
        values=Int(minimum=1, maximum=4),
        load_default=dict,
    )
    comment = Text(max_length=1000, load_default=None, allow_none=True)
    flag_complaint = fields.Boolean(load_default=False)


RATING_PERIODS = ("day", "week", "month")


class RatingSummaryQuerySchema(StrictSchema):
    """Filters of ``GET /v1/ratings/summary``: the most specific id given selects the figures;
    ``period`` (+ ``date``, default today) reads one day/week/month, ``from``/``to`` a custom range
    of local days (both inclusive)."""

    agency = Id(load_default=None)
    service = Id(load_default=None)
    counter = Id(load_default=None)
    officer = Id(load_default=None)
    period = fields.String(load_default=None, validate=validate.OneOf(RATING_PERIODS))
    date = Day(load_default=None)
    from_ = Day(data_key="from", load_default=None)
    to = Day(load_default=None)


class LeaderboardQuerySchema(StrictSchema):
    period = Pattern(
        r"^(day|week|month|year|(20[0-9]{2}|2100)-(0[1-9]|1[0-2]))$",
        max_length=7,
        load_default="month",
        metadata={
            "description": "day, week, month, year or YYYY-MM from 2000-01 to 2100-12 "
            "(mall's local calendar)"
        },
    )


class ComplaintListQuerySchema(pagination.PageQuerySchema):
    status = fields.String(
        load_default=None, validate=validate.OneOf(["open", "responded", "resolved", "escalated"])
    )


class ComplaintResponseCreateSchema(StrictSchema):
    """An agency's answer to a complaint; ``resolve`` also closes it (a first answer may);
    ``dispute`` classifies it as a dispute (sengketa): resolution due 14 days after opening."""

    message = Text(min_length=1, max_length=2000, required=True)
    resolve = fields.Boolean(load_default=False)
    dispute = fields.Boolean(load_default=False)


class RefundCreateSchema(StrictSchema):
    amount_idr = Int(minimum=1, maximum=MAX_FEE_IDR, required=True)
    reason = Text(max_length=200, load_default=None, allow_none=True)


class PaymentMethodSchema(StrictSchema):
    """Body of ``POST /v1/payments/{payment}/method``: the citizen picks how to pay."""

    method = fields.String(required=True, validate=validate.OneOf(PAYMENT_METHODS))


class SettlementQuerySchema(Schema):
    """Query of ``GET /v1/agencies/{agency}/settlements`` (and ``/reconciliation``)."""

    date = Day(load_default=None, metadata={"description": "mall-local day, YYYY-MM-DD"})


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


TAKE_BATCH_MAX = 64  # items in one ``take_tickets`` call; a gateway sends GROUP_COMMIT_SIZE at most


class TakeBatchItemSchema(StrictSchema):
    """One take-ticket of a gateway's batch: its body and key are loaded per item by the service
    (so one invalid item is refused alone), its correlation id is the HTTP request's."""

    data = fields.Dict(required=True)
    request_key = fields.Raw(load_default=None, allow_none=True)
    correlation_id = Text(max_length=100, load_default=None, allow_none=True)


class TakeBatchSchema(StrictSchema):
    takes = fields.List(
        fields.Nested(TakeBatchItemSchema),
        required=True,
        validate=validate.Length(min=1, max=TAKE_BATCH_MAX),
    )


def load_take_batch(takes: object) -> list[dict]:
    """The items of ``take_tickets`` (a malformed batch is refused whole: ``ValidationFailed``)."""
    return load(TakeBatchSchema, {"takes": takes})["takes"]
