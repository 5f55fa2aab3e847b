"""API keys: random secrets shown once, stored as SHA-256 hashes, with a role and an agency scope.

Keys are 256-bit random values, so a plain SHA-256 is the right hash (no password stretching is
needed for secrets nobody can guess); comparison happens on the hash, by an indexed lookup.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from mpp_contracts.errors import Forbidden, NotFound, Unauthorized
from mpp_gateway.adapters.tables import api_keys

ROLES = ("mall_admin", "agency_admin", "officer", "kiosk", "display")
ISSUABLE_BY_AGENCY = ("officer", "kiosk", "display")


@dataclass(frozen=True)
class Principal:
    key_id: str
    role: str
    agency_id: str | None


BOOTSTRAP_ID = "bootstrap-mall-admin"


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def new_key() -> str:
    return "mpp_" + secrets.token_urlsafe(32)


def authenticate(session: Session, header: str | None, bootstrap_key: str | None) -> Principal:
    """Resolve ``Authorization: Bearer <key>`` to a principal, or raise ``Unauthorized``."""
    if not header or not header.startswith("Bearer "):
        raise Unauthorized("UNAUTHORIZED", "missing bearer API key")
    key = header.removeprefix("Bearer ").strip()
    if bootstrap_key and hmac.compare_digest(key.encode(), bootstrap_key.encode()):
        return Principal(BOOTSTRAP_ID, "mall_admin", None)
    row = session.execute(
        select(api_keys.c.id, api_keys.c.role, api_keys.c.agency_id, api_keys.c.revoked_at).where(
            api_keys.c.key_hash == hash_key(key)
        )
    ).first()
    if row is None or row.revoked_at is not None:
        raise Unauthorized("UNAUTHORIZED", "unknown or revoked API key")
    return Principal(row.id, row.role, row.agency_id)


def authorize(principal: Principal, roles: tuple[str, ...], agency_id: str | None = None) -> None:
    """Raise ``Forbidden`` unless the principal's role is allowed and, if the path names an
    agency, the key belongs to that agency (mall_admin may act on every agency)."""
    if principal.role == "mall_admin":
        return
    if principal.role not in roles:
        raise Forbidden("FORBIDDEN", f"role {principal.role} may not do this")
    if agency_id is not None and principal.agency_id != agency_id:
        raise Forbidden("FORBIDDEN", "this key belongs to another agency")


def issue_key(session: Session, role: str, agency_id: str | None, label: str | None) -> dict:
    key = new_key()
    key_id = str(uuid.uuid4())
    session.execute(
        insert(api_keys).values(
            id=key_id,
            key_hash=hash_key(key),
            role=role,
            agency_id=agency_id,
            label=label,
            created_at=datetime.now(UTC),
        )
    )
    return {"id": key_id, "key": key, "role": role, "agency_id": agency_id, "label": label}


def revoke_key(session: Session, agency_id: str, key_id: str) -> None:
    result = session.execute(
        update(api_keys)
        .where(
            api_keys.c.id == key_id,
            api_keys.c.agency_id == agency_id,
            api_keys.c.revoked_at.is_(None),
        )
        .values(revoked_at=datetime.now(UTC))
    )
    if result.rowcount == 0:
        raise NotFound("API_KEY_NOT_FOUND", "no active key with this id for this agency")
