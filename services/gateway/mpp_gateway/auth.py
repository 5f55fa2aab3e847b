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

from cachetools import TTLCache
from nameko.extensions import DependencyProvider
from sqlalchemy import and_, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from mpp_contracts.errors import NotFound, Unauthorized
from mpp_contracts.scope import require_agency_scope
from mpp_gateway.adapters.tables import api_keys

ROLES = ("mall_admin", "agency_admin", "officer", "kiosk", "display")
ISSUABLE_BY_AGENCY = ("officer", "kiosk", "display")
ISSUABLE_BY_MALL = (*ISSUABLE_BY_AGENCY, "agency_admin")
SCOPES = ("agency", "mall")
MALL_WIDE_ROLES = ("kiosk",)  # a kiosk serves every agency of the mall


@dataclass(frozen=True)
class Principal:
    """Who calls. ``agency_id`` is the agency the key acts for (None: the whole mall);
    ``owner_agency_id`` is the agency that issued and may revoke it."""

    key_id: str
    role: str
    agency_id: str | None
    owner_agency_id: str | None = None


BOOTSTRAP_LABEL = "MALL_ADMIN_KEY (bootstrap)"


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def new_key() -> str:
    return "mpp_" + secrets.token_urlsafe(32)


class PrincipalCache:
    """Keys resolved in the last ``ttl`` seconds, by hash: an officer pressing call-next all day
    is looked up in the database once per ``ttl``, not on every press (the lookup, its session
    and connection were a sixth of the gateway's CPU per call-next). Only valid keys are kept
    (random keys cannot fill it); a key revoked through this gateway process is forgotten at
    once, so it answers 401 from the next request; another replica of the gateway may still
    accept it for up to ``ttl`` seconds. ``ttl`` 0 turns the cache off."""

    def __init__(self, ttl: float, maxsize: int = 10_000) -> None:
        self._keys: TTLCache | None = TTLCache(maxsize, ttl) if ttl > 0 else None

    def get(self, key_hash: str) -> Principal | None:
        return None if self._keys is None else self._keys.get(key_hash)

    def put(self, key_hash: str, principal: Principal) -> None:
        if self._keys is not None:
            self._keys[key_hash] = principal

    def forget(self, key_id: str) -> None:
        if self._keys is not None:
            for key_hash, principal in list(self._keys.items()):
                if principal.key_id == key_id:
                    del self._keys[key_hash]


class KnownKeys(DependencyProvider):
    """The gateway process's :class:`PrincipalCache` (``AUTH_CACHE_SECONDS``, default 5)."""

    def setup(self) -> None:
        self.cache = PrincipalCache(float(self.container.config.get("AUTH_CACHE_SECONDS", 5)))

    def get_dependency(self, worker_ctx) -> PrincipalCache:
        return self.cache


def known_principal(header: str | None, known: PrincipalCache) -> Principal | None:
    """The principal of ``Authorization: Bearer <key>`` if ``known`` holds that key (what
    :func:`authenticate` answers first for it), else None."""
    if not header or not header.startswith("Bearer "):
        return None
    return known.get(hash_key(header.removeprefix("Bearer ").strip()))


def authenticate(
    session: Session,
    header: str | None,
    bootstrap_key: str | None,
    known: PrincipalCache | None = None,
) -> Principal:
    """Resolve ``Authorization: Bearer <key>`` to a principal, or raise ``Unauthorized``.

    The configured bootstrap key (``MALL_ADMIN_KEY``) is a ``mall_admin`` key recorded in the
    database by its hash on first use, so it is listed and can be revoked like any other key: a
    revoked bootstrap key answers 401 even while it is still configured, and a new value (a
    rotation) is a new key."""
    if not header or not header.startswith("Bearer "):
        raise Unauthorized("UNAUTHORIZED", "missing bearer API key")
    key = header.removeprefix("Bearer ").strip()
    key_hash = hash_key(key)
    if known is not None and (principal := known.get(key_hash)) is not None:
        return principal
    if bootstrap_key and hmac.compare_digest(key.encode(), str(bootstrap_key).encode()):
        row = record_bootstrap(session, bootstrap_key)
        if row.revoked_at is not None:
            raise Unauthorized("UNAUTHORIZED", "unknown or revoked API key")
        principal = Principal(row.id, "mall_admin", None)
        if known is not None:
            known.put(key_hash, principal)
        return principal
    row = session.execute(
        select(
            api_keys.c.id,
            api_keys.c.role,
            api_keys.c.agency_id,
            api_keys.c.scope,
            api_keys.c.revoked_at,
        ).where(api_keys.c.key_hash == key_hash)
    ).first()
    if row is None or row.revoked_at is not None:
        raise Unauthorized("UNAUTHORIZED", "unknown or revoked API key")
    acting_for = None if row.scope == "mall" else row.agency_id
    principal = Principal(row.id, row.role, acting_for, row.agency_id)
    if known is not None:
        known.put(key_hash, principal)
    return principal


def authorize(principal: Principal, roles: tuple[str, ...], agency_id: str | None = None) -> None:
    """Raise ``Forbidden`` unless the principal's role is allowed and, if the path names an
    agency, the key belongs to that agency (mall_admin may act on every agency): the services'
    rule (``mpp_contracts.scope``), on the principal's role and agency."""
    require_agency_scope(
        {"role": principal.role, "agency_id": principal.agency_id}, agency_id, roles
    )


def scope_for(role: str, requested: str | None) -> str:
    """Kiosk keys are mall-wide; display keys are for one agency unless ``mall`` is asked;
    every other role acts for its agency only."""
    if role in MALL_WIDE_ROLES:
        return "mall"
    if role == "display" and requested == "mall":
        return "mall"
    return "agency"


def issue_key(
    session: Session,
    role: str,
    agency_id: str | None,
    label: str | None,
    scope: str | None = None,
) -> dict:
    """Store a new key's hash; the answer is the only place the secret ever appears."""
    key = new_key()
    key_id = str(uuid.uuid4())
    created_at = datetime.now(UTC)
    scope = "mall" if agency_id is None else scope_for(role, scope)  # mall_admin keys
    session.execute(
        insert(api_keys).values(
            id=key_id,
            key_hash=hash_key(key),
            role=role,
            agency_id=agency_id,
            label=label,
            scope=scope,
            created_at=created_at,
        )
    )
    return {
        "id": key_id,
        "key": key,
        "role": role,
        "agency_id": agency_id,
        "scope": scope,
        "label": label,
        "created_at": created_at.isoformat(),
        "revoked_at": None,
    }


def list_keys(
    session: Session, agency_id: str, after: list | None, limit: int
) -> tuple[list[dict], list[str] | None]:
    """An agency's keys, oldest first, without secrets or hashes; keyset pagination on
    (created_at, id) (``after``: a decoded cursor, ``[datetime, str]``). Returns the page and
    the position after its last row (or None)."""
    c = api_keys.c
    query = select(c.id, c.role, c.agency_id, c.scope, c.label, c.created_at, c.revoked_at).where(
        c.agency_id == agency_id
    )
    if after is not None:
        created, key_id = after
        query = query.where(
            or_(c.created_at > created, and_(c.created_at == created, c.id > key_id))
        )
    rows = session.execute(query.order_by(c.created_at, c.id).limit(limit + 1)).all()
    items = [
        {
            "id": r.id,
            "role": r.role,
            "agency_id": r.agency_id,
            "scope": r.scope,
            "label": r.label,
            "created_at": r.created_at.isoformat(),
            "revoked_at": r.revoked_at.isoformat() if r.revoked_at else None,
        }
        for r in rows[:limit]
    ]
    last = rows[limit - 1] if len(rows) > limit else None
    return items, [last.created_at.isoformat(), last.id] if last is not None else None


def get_key(session: Session, key_id: str) -> dict:
    """One key by its id, without its secret or hash (a screen asks which listed key it holds)."""
    c = api_keys.c
    row = session.execute(
        select(c.id, c.role, c.agency_id, c.scope, c.label, c.created_at, c.revoked_at).where(
            c.id == key_id
        )
    ).first()
    if row is None:
        raise NotFound("API_KEY_NOT_FOUND", "no key with this id")
    return {
        "id": row.id,
        "role": row.role,
        "agency_id": row.agency_id,
        "scope": row.scope,
        "label": row.label,
        "created_at": row.created_at.isoformat(),
        "revoked_at": row.revoked_at.isoformat() if row.revoked_at else None,
    }


def revoke_key(session: Session, agency_id: str | None, key_id: str) -> None:
    """Revoke an active key of the agency (``agency_id`` None: a mall_admin key, the recorded
    bootstrap key included)."""
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


def bootstrap_id(bootstrap_key: str) -> str:
    """The bootstrap key's id: stable for one configured value, a new one after a rotation."""
    return "bootstrap-" + hash_key(str(bootstrap_key))[:12]


def record_bootstrap(session: Session, bootstrap_key: str):
    """The bootstrap key's row (id, revoked_at), stored on first sight: committed at once so
    every gateway replica sees the same row (two replicas recording it together: one insert
    wins, the other reads it)."""
    key_hash = hash_key(str(bootstrap_key))
    query = select(api_keys.c.id, api_keys.c.revoked_at).where(api_keys.c.key_hash == key_hash)
    row = session.execute(query).first()
    if row is not None:
        return row
    try:
        session.execute(
            insert(api_keys).values(
                id=bootstrap_id(bootstrap_key),
                key_hash=key_hash,
                role="mall_admin",
                agency_id=None,
                label=BOOTSTRAP_LABEL,
                scope="mall",
                created_at=datetime.now(UTC),
            )
        )
        session.commit()
    except IntegrityError:
        session.rollback()
    return session.execute(query).one()
