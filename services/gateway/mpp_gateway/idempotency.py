"""``Idempotency-Key`` on creating POSTs: the first answer is stored and replayed.

A key is claimed by inserting its row *before* the work runs (committed at once), so of two
concurrent requests with one key exactly one does the work; the other answers 409
``IDEMPOTENCY_IN_PROGRESS`` and may retry. The same key with another body (or path) answers 409
``IDEMPOTENCY_KEY_REUSED``. Answers below 500 are stored (except 429); a 5xx or 429 releases the
key so the client's retry does the work. Keys live ``IDEMPOTENCY_TTL_HOURS`` (at least 24).

A claim still without an answer after ``stale_after`` (a few RPC timeouts: any live request has
answered by then) belongs to a gateway that died mid-request; a retry takes it over and does the
work, instead of answering "in progress" for a day. Fault injection found that case. The first
attempt may have reached the service before its gateway died: take-ticket, booking and rating
pass :func:`request_key` down, and their service returns what it did for it (other routes'
takeovers may do their work twice; docs/api-guide.md).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from werkzeug.wrappers import Response

from mpp_contracts.errors import Conflict, ValidationFailed
from mpp_gateway.adapters.tables import idempotency

HEADER = "Idempotency-Key"
MIN_TTL_HOURS = 24


def scope_of(principal, method: str, path: str) -> str:
    """Keys are the client's own: one per API key (public clients share one scope) and route."""
    return f"{principal.key_id if principal else 'public'}:{method} {path}"


_REQUEST_KEY = "mpp.request_key"  # where run_once leaves it in the WSGI environ


def request_key(request) -> str | None:
    """What a service stores to know a keyed request again (``None`` without a key): a hash of
    the key's scope, the key and the body, so a retry that takes over an abandoned claim (below)
    gets what the first attempt did instead of doing it twice. :func:`run_once` computes it from
    the claim's own scope and body hash; take-ticket, booking and rating pass it down."""
    return request.environ.get(_REQUEST_KEY)


def fingerprint(request) -> str:
    digest = hashlib.sha256()
    digest.update(f"{request.method} {request.path}\n".encode())
    digest.update(request.get_data(cache=True))
    return digest.hexdigest()


def _claim(
    uow, scope: str, key: str, body_hash: str, ttl: timedelta, stale_after: timedelta
) -> Response | None:
    """Insert the key's row, or return the stored answer to replay (or raise 409)."""
    session = uow.session
    for _ in range(2):
        try:
            with session.begin_nested():
                session.execute(
                    insert(idempotency).values(
                        scope=scope, key=key, body_hash=body_hash, created_at=datetime.now(UTC)
                    )
                )
            uow.commit()
            return None
        except IntegrityError:
            session.rollback()
        row = session.execute(
            select(idempotency).where(idempotency.c.scope == scope, idempotency.c.key == key)
        ).first()
        if row is None:
            continue  # released meanwhile: claim again
        abandoned = row.status is None and row.created_at < datetime.now(UTC) - stale_after
        if abandoned or row.created_at < datetime.now(UTC) - ttl:
            session.execute(
                delete(idempotency).where(
                    idempotency.c.scope == scope,
                    idempotency.c.key == key,
                    idempotency.c.created_at == row.created_at,
                )
            )
            uow.commit()
            continue
        if row.body_hash != body_hash:
            raise Conflict(
                "IDEMPOTENCY_KEY_REUSED",
                "this Idempotency-Key was used with another request body",
            )
        if row.status is None:
            raise Conflict(
                "IDEMPOTENCY_IN_PROGRESS",
                "a request with this Idempotency-Key is still being processed; retry",
            )
        return Response(
            row.response or "",
            status=row.status,
            mimetype="application/json",
            headers={"Idempotent-Replayed": "true"},
        )
    raise Conflict("IDEMPOTENCY_IN_PROGRESS", "retry")


def run_once(
    uow,
    request,
    scope: str,
    ttl_hours: float,
    call: Callable[[], Response],
    stale_after_seconds: float = 30.0,
):
    """Run ``call`` at most once per (scope, Idempotency-Key); replay its stored answer."""
    key = request.headers.get(HEADER, "")
    if not 1 <= len(key) <= 200 or not key.isprintable():
        raise ValidationFailed(
            "VALIDATION_FAILED", "invalid headers", {HEADER: ["1 to 200 printable characters"]}
        )
    ttl = timedelta(hours=max(float(ttl_hours), MIN_TTL_HOURS))
    stale_after = timedelta(seconds=stale_after_seconds)
    body_hash = fingerprint(request)
    replay = _claim(uow, scope, key, body_hash, ttl, stale_after)
    if replay is not None:
        return replay
    request.environ[_REQUEST_KEY] = hashlib.sha256(
        f"{scope}\n{key}\n{body_hash}".encode()
    ).hexdigest()
    response = call()
    session = uow.session
    where = (idempotency.c.scope == scope, idempotency.c.key == key)
    if response.status_code >= 400:
        session.rollback()  # nothing half-done by a failed handler may commit with the record
    if response.status_code >= 500 or response.status_code == 429:
        session.execute(delete(idempotency).where(*where))
    else:
        session.execute(
            update(idempotency)
            .where(*where)
            .values(status=response.status_code, response=response.get_data(as_text=True))
        )
    uow.commit()
    return response


def purge(session, ttl_hours: float) -> int:
    """Forget keys older than the TTL (run by a timer)."""
    cutoff = datetime.now(UTC) - timedelta(hours=max(float(ttl_hours), MIN_TTL_HOURS))
    return session.execute(delete(idempotency).where(idempotency.c.created_at < cutoff)).rowcount
