"""API key requests and answers (the secret appears only in the answer to its creation)."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from mpp_contracts.bounds import Pattern, Text
from mpp_contracts.rpc import StrictSchema
from mpp_gateway.auth import ISSUABLE_BY_AGENCY, ISSUABLE_BY_MALL, SCOPES


class ApiKeyCreateSchema(StrictSchema):
    role = fields.String(
        required=True,
        validate=validate.OneOf(ISSUABLE_BY_MALL),
        metadata={"description": "officer, kiosk or display; agency_admin by mall_admin only"},
    )
    label = Text(max_length=80, load_default=None, allow_none=True)
    scope = fields.String(
        load_default=None,
        allow_none=True,
        validate=validate.OneOf(SCOPES),
        metadata={
            "description": "display keys: 'agency' (default) or 'mall'; kiosk keys are always "
            "'mall'; other roles always 'agency'"
        },
    )


class ApiKeySchema(Schema):
    id = fields.String(required=True)
    role = fields.String(required=True)
    agency_id = fields.String(required=True, allow_none=True)
    scope = fields.String(required=True)
    label = fields.String(required=True, allow_none=True)
    created_at = fields.String(required=True, metadata={"format": "date-time"})
    revoked_at = fields.String(required=True, allow_none=True, metadata={"format": "date-time"})


class ApiKeyIssuedSchema(ApiKeySchema):
    key = fields.String(required=True, metadata={"description": "The secret, shown only once"})


class MallAdminKeyCreateSchema(ApiKeyCreateSchema):
    """A mall_admin key: only a label (the same bounds as an agency key's); no role or scope."""

    class Meta:
        exclude = ("role", "scope")


class PairingCodeCreateSchema(ApiKeyCreateSchema):
    """A code for a device: the role of the key it will get (never an admin's)."""

    role = fields.String(
        required=True,
        validate=validate.OneOf(ISSUABLE_BY_AGENCY),
        metadata={"description": "officer, kiosk or display: the key the device will get"},
    )


class PairingCodeSchema(Schema):
    code = fields.String(
        required=True,
        metadata={"description": "8 digits, shown once; usable once", "example": "40718253"},
    )
    role = fields.String(required=True)
    agency_id = fields.String(required=True)
    scope = fields.String(required=True)
    label = fields.String(required=True, allow_none=True)
    expires_at = fields.String(required=True, metadata={"format": "date-time"})


class PairingRedeemSchema(StrictSchema):
    code = Pattern(
        r"^[0-9]{8}$",
        max_length=8,
        required=True,
        metadata={"description": "The 8-digit pairing code", "example": "40718253"},
    )
