"""Error types shared across services.

A service raises one of these from an RPC method; nameko serialises it and, because the chassis
registers each of ``REMOTE_ERRORS`` with nameko (``mpp_chassis.messaging``, which every RPC caller
imports), the caller receives the same type back (not a ``RemoteError``). The types stay plain
exceptions here, so the contracts import no runtime. The gateway maps each type to an HTTP status
in one table.
Arguments are plain JSON values: ``(code, message, details)``.
"""

from __future__ import annotations

from typing import Any


class MppError(Exception):
    """Base of all contract errors: a machine-readable code, a message and details."""

    default_code = "ERROR"

    def __init__(
        self, code: str | None = None, message: str = "", details: dict[str, Any] | None = None
    ) -> None:
        self.code = code or self.default_code
        self.message = message or self.code.replace("_", " ").lower()
        self.details = details or {}
        super().__init__(self.code, self.message, self.details)

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


class BadRequest(MppError):
    default_code = "BAD_REQUEST"


class ValidationFailed(MppError):
    """Fields failed validation; ``details`` maps field names to messages."""

    default_code = "VALIDATION_FAILED"


class NotFound(MppError):
    default_code = "NOT_FOUND"


class Conflict(MppError):
    """The resource is in a state that forbids the request (e.g. an invalid transition)."""

    default_code = "CONFLICT"


class Forbidden(MppError):
    default_code = "FORBIDDEN"


class Unauthorized(MppError):
    default_code = "UNAUTHORIZED"


class ServiceUnavailable(MppError):
    """A collaborator (a service, or its database) is unavailable or did not answer in time;
    retry later."""

    default_code = "SERVICE_UNAVAILABLE"


EXPECTED_ERRORS = (BadRequest, ValidationFailed, NotFound, Conflict, Forbidden, Unauthorized)
REMOTE_ERRORS = (*EXPECTED_ERRORS, ServiceUnavailable)
"""The types an RPC caller receives back as themselves (the chassis registers them with nameko)."""
