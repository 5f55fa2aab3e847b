"""Request schemas of the services' RPC methods, shared by the gateway (HTTP validation and the
OpenAPI document) and the services (loading RPC arguments). One schema validates both ends."""

from __future__ import annotations

from marshmallow import RAISE, Schema, fields, validate

from mpp_contracts import pagination

PRIORITY_CATEGORIES = ("elderly", "disability", "pregnant", "nursing", "children")
TICKET_ACTIONS = ("recall", "start", "complete", "no-show", "transfer", "cancel")


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


class ServiceCreateSchema(StrictSchema):
    code = fields.String(required=True, validate=validate.Regexp(r"^[A-Z0-9-]{2,24}$"))
    name = fields.String(required=True, validate=validate.Length(min=2, max=120))
    fee_idr = fields.Integer(required=True, validate=validate.Range(min=0, max=100_000_000))
    sla_minutes = fields.Integer(required=True, validate=validate.Range(min=1, max=10_080))
    prefix = fields.String(required=True, validate=validate.Regexp(r"^[A-Z]{1,3}$"))
    requirements = fields.List(fields.String(validate=validate.Length(max=200)), load_default=list)
    daily_quota = fields.Integer(load_default=None, allow_none=True, validate=validate.Range(min=1))


class CounterCreateSchema(StrictSchema):
    name = fields.String(required=True, validate=validate.Length(min=1, max=40))
    service_ids = fields.List(fields.String(), required=True, validate=validate.Length(min=1))
    is_open = fields.Boolean(load_default=True)


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
    """An agency's answer to a complaint; ``resolve`` also closes it (a first answer may)."""

    message = fields.String(required=True, validate=validate.Length(min=1, max=2000))
    resolve = fields.Boolean(load_default=False)


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


def load(schema: Schema, data: dict | None) -> dict:
    """Load RPC arguments; field errors become the contract's ``ValidationFailed``."""
    from marshmallow import ValidationError

    from mpp_contracts.errors import ValidationFailed

    try:
        return schema.load(data or {})
    except ValidationError as exc:
        raise ValidationFailed(
            "VALIDATION_FAILED", "invalid fields", exc.normalized_messages()
        ) from None
