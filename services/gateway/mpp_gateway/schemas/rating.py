"""Answers of the rating routes (OpenAPI): ratings, public summaries, the leaderboard, complaints.

Public answers (summary, leaderboard) carry no personal data: no ticket, officer or rating id, no
NIK, and a comment only once the agency published it. Decimals travel as strings ("77.78") so that
no client float rounding can move a value across a grade boundary.
"""

from __future__ import annotations

from marshmallow import Schema, fields

Decimal = fields.String  # exact decimal as a string, e.g. "88.31"


class RatingSchema(Schema):
    id = fields.String(required=True)
    ticket_id = fields.String(required=True)
    stars = fields.Integer(required=True)
    answers = fields.Dict(keys=fields.String(), values=fields.Integer(), required=True)
    comment = fields.String(
        allow_none=True,
        required=True,
        metadata={"description": "Stored exactly as typed; clients must escape it when rendering"},
    )
    submitted_at = fields.String(required=True)
    complaint_id = fields.String(
        allow_none=True,
        required=True,
        metadata={"description": "Set when 1–2 stars or flag_complaint opened a complaint"},
    )


class IkmElementSchema(Schema):
    code = fields.String(required=True, metadata={"example": "U3"})
    name = fields.String(required=True)
    respondents = fields.Integer(required=True)
    nrr = Decimal(allow_none=True, required=True, metadata={"description": "1–4, 4 decimals"})
    weighted_nrr = Decimal(allow_none=True, required=True)
    converted = Decimal(allow_none=True, required=True, metadata={"description": "NRR × 25"})
    grade = fields.String(allow_none=True, required=True)


class IkmFigureSchema(Schema):
    weight = fields.String(
        required=True, metadata={"description": "'regulation' (0.111) or 'exact' (1/9)"}
    )
    weight_value = fields.String(required=True, metadata={"example": "111/1000"})
    raw = Decimal(allow_none=True, required=True, metadata={"description": "IKM on 1–4"})
    converted = Decimal(allow_none=True, required=True, metadata={"description": "IKM × 25"})
    grade = fields.String(allow_none=True, required=True, metadata={"example": "B"})
    grade_label = fields.String(allow_none=True, required=True, metadata={"example": "Baik"})


class IkmSchema(Schema):
    other_weight = fields.Nested(
        IkmFigureSchema,
        required=True,
        metadata={
            "description": "The same answers under the other weight: with the default 1/9, "
            "the regulation's printed 0.111 (up to 0.10 lower), for an auditor's spreadsheet; "
            "not the published figure, never ranked (docs/decisions/0004-ikm-weight.md)"
        },
    )
    weight = fields.String(
        required=True, metadata={"description": "'exact' (1/9) or 'regulation' (0.111)"}
    )
    weight_value = fields.String(required=True, metadata={"example": "1/9"})
    raw = Decimal(allow_none=True, required=True, metadata={"description": "IKM on 1–4"})
    converted = Decimal(allow_none=True, required=True, metadata={"description": "IKM × 25"})
    grade = fields.String(allow_none=True, required=True, metadata={"example": "B"})
    grade_label = fields.String(allow_none=True, required=True, metadata={"example": "Baik"})
    missing_elements = fields.List(fields.String(), required=True)
    elements = fields.List(fields.Nested(IkmElementSchema), required=True)


class SummaryPeriodSchema(Schema):
    kind = fields.String(required=True, metadata={"description": "day, week, month or range"})
    from_ = fields.String(data_key="from", allow_none=True, required=True)
    to = fields.String(allow_none=True, required=True)


class PublishedCommentSchema(Schema):
    stars = fields.Integer(required=True)
    comment = fields.String(required=True)
    date = fields.String(required=True)


class RatingSummarySchema(Schema):
    dimension = fields.String(required=True, metadata={"example": "agency"})
    id = fields.String(allow_none=True, required=True)
    period = fields.Nested(SummaryPeriodSchema, required=True)
    count = fields.Integer(required=True)
    average_stars = Decimal(allow_none=True, required=True)
    csat = Decimal(
        allow_none=True, required=True, metadata={"description": "share of 4–5 stars, 0–1"}
    )
    ikm = fields.Nested(IkmSchema, required=True)
    served = fields.Integer(
        required=True, metadata={"description": "citizens served in the period"}
    )
    sample_needed = fields.Integer(required=True, metadata={"description": "Krejcie & Morgan"})
    representative = fields.Boolean(required=True)
    published_comments = fields.List(fields.Nested(PublishedCommentSchema), required=True)


class LeaderboardEntrySchema(Schema):
    rank = fields.Integer(
        allow_none=True,
        required=True,
        metadata={"description": "null: listed but not ranked (sample not yet representative)"},
    )
    agency_id = fields.String(required=True)
    agency_name = fields.String(required=True)
    converted_ikm = Decimal(allow_none=True, required=True)
    grade = fields.String(allow_none=True, required=True)
    grade_label = fields.String(allow_none=True, required=True)
    respondents = fields.Integer(required=True)
    population = fields.Integer(required=True)
    sample_needed = fields.Integer(required=True)
    representative = fields.Boolean(required=True)
    csat = Decimal(allow_none=True, required=True)
    elements = fields.List(
        fields.Nested(IkmElementSchema),
        required=True,
        metadata={"description": "The nine SKM elements (U1–U9) over the same answers"},
    )


class LeaderboardSchema(Schema):
    period = fields.String(required=True)
    from_ = fields.String(data_key="from", required=True)
    to = fields.String(required=True)
    weight = fields.String(required=True)
    items = fields.List(fields.Nested(LeaderboardEntrySchema), required=True)


class ComplaintResponseSchema(Schema):
    message = fields.String(required=True)
    resolves = fields.Boolean(required=True)
    created_at = fields.String(required=True)


class ComplaintSchema(Schema):
    id = fields.String(required=True)
    agency_id = fields.String(required=True)
    service_id = fields.String(required=True)
    ticket_id = fields.String(required=True)
    rating_id = fields.String(required=True)
    reason = fields.String(required=True, metadata={"description": "low_stars or flagged"})
    stars = fields.Integer(required=True)
    comment = fields.String(allow_none=True, required=True)
    status = fields.String(
        required=True, metadata={"description": "open, responded, resolved or escalated"}
    )
    disputed = fields.Boolean(required=True)
    opened_at = fields.String(required=True)
    first_response_due = fields.String(required=True)
    resolution_due = fields.String(required=True)
    responded_at = fields.String(allow_none=True, required=True)
    resolved_at = fields.String(allow_none=True, required=True)
    escalated_at = fields.String(allow_none=True, required=True)
    escalated_for = fields.String(allow_none=True, required=True)
    responses = fields.List(fields.Nested(ComplaintResponseSchema), required=True)


class CommentPublishedSchema(Schema):
    id = fields.String(required=True)
    published = fields.Boolean(required=True)
