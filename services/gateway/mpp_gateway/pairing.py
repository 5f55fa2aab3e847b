"""Pairing: an admin creates a short-lived code for a device (a board, a kiosk, a counter's
console); the device exchanges it once for its own key, which never has to be typed or sent by
hand. A code is 8 digits, stored as a hash, usable once until it expires; a wrong, used or
expired code answers the same 404, and failed attempts count against the caller's address like
failed keys do."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import insert, update
from sqlalchemy.orm import Session

from mpp_contracts.errors import NotFound
from mpp_gateway import auth
from mpp_gateway.adapters.tables import pairing_codes

CODE_DIGITS = 8


def _hash(code: str) -> str:
    return hashlib.sha256(code.encode()).hexdigest()


def create_code(
    session: Session,
    role: str,
    agency_id: str,
    label: str | None,
    scope: str | None,
    created_by: str | None,
    ttl_seconds: int,
) -> dict:
    code = f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"
    now = datetime.now(UTC)
    expires_at = now + timedelta(seconds=ttl_seconds)
    scope = auth.scope_for(role, scope)
    session.execute(
        insert(pairing_codes).values(
            id=str(uuid.uuid4()),
            code_hash=_hash(code),
            role=role,
            agency_id=agency_id,
            scope=scope,
            label=label,
            created_by=created_by,
            created_at=now,
            expires_at=expires_at,
        )
    )
    return {
        "code": code,
        "role": role,
        "agency_id": agency_id,
        "scope": scope,
        "label": label,
        "expires_at": expires_at.isoformat(),
    }


def redeem(session: Session, code: str) -> dict:
    """The device's new key (its secret once), the code spent; 404 if no live code matches.
    The guarded update spends a code once however many devices present it at the same time."""
    now = datetime.now(UTC)
    row = session.execute(
        update(pairing_codes)
        .where(
            pairing_codes.c.code_hash == _hash(code),
            pairing_codes.c.used_at.is_(None),
            pairing_codes.c.expires_at > now,
        )
        .values(used_at=now)
        .returning(
            pairing_codes.c.id,
            pairing_codes.c.role,
            pairing_codes.c.agency_id,
            pairing_codes.c.scope,
            pairing_codes.c.label,
        )
    ).first()
    if row is None:
        raise NotFound("PAIRING_CODE_NOT_FOUND", "no such pairing code, or it was used or expired")
    key = auth.issue_key(session, row.role, row.agency_id, row.label, row.scope)
    session.execute(
        update(pairing_codes).where(pairing_codes.c.id == row.id).values(key_id=key["id"])
    )
    return key
