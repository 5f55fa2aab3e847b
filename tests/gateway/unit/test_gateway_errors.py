"""One error envelope, one status table, no stack trace."""

from __future__ import annotations

import json

import pytest
from marshmallow import Schema, ValidationError, fields
from nameko.exceptions import RemoteError, UnknownService

from mpp_contracts import errors
from mpp_gateway.http import STATUS_BY_ERROR, RateLimited, error_response


@pytest.mark.parametrize(
    ("exc", "status"),
    [
        (errors.BadRequest("MALFORMED_JSON", "x"), 400),
        (errors.Unauthorized(), 401),
        (errors.Forbidden(), 403),
        (errors.NotFound("TICKET_NOT_FOUND", "no ticket"), 404),
        (errors.Conflict("INVALID_TRANSITION", "no"), 409),
        (errors.ValidationFailed("VALIDATION_FAILED", "bad", {"stars": ["too big"]}), 422),
        (RateLimited("RATE_LIMITED", "slow down", {"retry_after": 7}), 429),
        (errors.ServiceUnavailable("SERVICE_UNAVAILABLE", "down"), 503),
        # as a backend's database error arrives through nameko (details' values as strings)
        (errors.ServiceUnavailable("DATABASE_UNAVAILABLE", "busy", {"retry_after": "2"}), 503),
        (UnknownService("queue"), 503),
    ],
)
def test_each_contract_error_has_one_status_and_the_envelope(exc, status):
    response = error_response(exc, "req-1")
    body = json.loads(response.get_data())
    assert response.status_code == status
    assert set(body["error"]) == {"code", "message", "details", "request_id"}
    assert body["error"]["request_id"] == "req-1"
    if status in (429, 503):
        assert int(response.headers["Retry-After"]) >= 1
    if status == 429:
        assert response.headers["Retry-After"] == "7"
    if body["error"]["code"] == "DATABASE_UNAVAILABLE":
        assert response.headers["Retry-After"] == "2"


def test_marshmallow_errors_list_the_fields():
    class S(Schema):
        stars = fields.Integer(required=True)
        comment = fields.String()

    with pytest.raises(ValidationError) as caught:
        S().load({"comment": 5})
    body = json.loads(error_response(caught.value, None).get_data())
    assert body["error"]["code"] == "VALIDATION_FAILED"
    assert set(body["error"]["details"]) == {"stars", "comment"}


@pytest.mark.parametrize(
    "exc",
    [KeyError("secret_column"), RemoteError("KeyError", "Traceback (most recent call last)")],
)
def test_unknown_errors_leave_no_trace(exc):
    response = error_response(exc, "r")
    text = response.get_data(as_text=True)
    assert response.status_code == 500
    assert "Traceback" not in text and "secret_column" not in text


def test_the_status_table_covers_every_contract_error():
    for name in ("BadRequest", "Unauthorized", "Forbidden", "NotFound", "Conflict"):
        assert getattr(errors, name) in STATUS_BY_ERROR
    assert STATUS_BY_ERROR[errors.ValidationFailed] == 422
