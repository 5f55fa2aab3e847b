"""Schemas every route shares: the error envelope and the page envelope of lists."""

from __future__ import annotations

from functools import cache

from marshmallow import Schema, fields

from mpp_contracts.pagination import PageQuerySchema

__all__ = ["ErrorEnvelopeSchema", "ErrorSchema", "PageQuerySchema", "page_schema"]


class ErrorSchema(Schema):
    code = fields.String(
        required=True, metadata={"description": "Machine-readable code", "example": "NOT_FOUND"}
    )
    message = fields.String(required=True)
    details = fields.Dict(
        required=True,
        metadata={"description": "For VALIDATION_FAILED: field name to list of messages"},
    )
    request_id = fields.String(required=True, allow_none=True)


class ErrorEnvelopeSchema(Schema):
    error = fields.Nested(ErrorSchema, required=True)


@cache
def page_schema(item_schema: type[Schema]) -> type[Schema]:
    """``{"items": [item...], "next_cursor": str|None}`` for one item schema (one class each,
    so OpenAPI names it ``<Item>Page``)."""
    name = item_schema.__name__.removesuffix("Schema") + "PageSchema"
    return type(
        name,
        (Schema,),
        {
            "items": fields.List(fields.Nested(item_schema), required=True),
            "next_cursor": fields.String(
                required=True,
                allow_none=True,
                metadata={"description": "Pass as ?cursor= for the next page; null at the end"},
            ),
        },
    )
