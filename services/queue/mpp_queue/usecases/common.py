"""What every queue use case shares: settings, the clock, row loading, paging and NIK handling."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import bindparam, select

from mpp_contracts import pagination
from mpp_contracts.errors import NotFound, ValidationFailed
from mpp_contracts.scope import require_agency_scope
from mpp_queue.domain import nik


@dataclass(frozen=True)
class Settings:
    """The queue's tunables, read from config once per worker."""

    mall_timezone: str = "Asia/Jakarta"
    nik_hash_key: str = "change-me"
    ticket_code_key: str = "change-me"
    no_show_after_calls: int = 3
    max_priority_streak: int = 3
    booking_no_show_threshold: int = 3
    booking_no_show_window_days: int = 30
    booking_block_days: int = 30
    sweep_batch: int = 500


def now_utc() -> datetime:
    return datetime.now(UTC)


def iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


@functools.cache
def _by_id(table):
    """``SELECT * FROM table WHERE id = :id``, built once per table: a statement built per call
    computes its cache key every time (~4 % of the queue's CPU on call-next)."""
    return select(table).where(table.c.id == bindparam("id"))


def load_row(session, table, key: str, code: str, what: str | None = None) -> dict:
    row = session.execute(_by_id(table), {"id": key}).mappings().first()
    if row is None:
        raise NotFound(code, f"{what or table.name[:-1]} {key} not found")
    return dict(row)


STAFF_ROLES = ("officer", "agency_admin")


def check_agency(actor: dict | None, agency_id: str) -> None:
    """An officer (or agency admin) acts only on their own agency's tickets and counters; the mall
    admin on every agency's. Nobody acts anonymously: no actor is refused, as payment and rating
    refuse it."""
    require_agency_scope(
        actor, agency_id, STAFF_ROLES, anonymous="an officer's or an agency's key is needed"
    )


def invalid(field: str, message: str) -> ValidationFailed:
    return ValidationFailed("VALIDATION_FAILED", "invalid fields", {field: [message]})


def citizen_nik(raw: str | None, settings: Settings, today) -> tuple[str | None, str | None]:
    """Validate a NIK and return ``(keyed hash, last 4 digits)``; the number goes no further."""
    if not raw:
        return None, None
    try:
        nik.validate_nik(raw, today=today)
    except nik.InvalidNik as exc:
        raise invalid("nik", f"invalid NIK ({exc.reason})") from None
    return nik.nik_hash(raw, settings.nik_hash_key), raw[-4:]


# -- keyset pagination (mpp_contracts.pagination: opaque cursors, {"items", "next_cursor"}) ------


def page_limit(limit: int | None) -> int:
    if limit is None:
        return pagination.DEFAULT_LIMIT
    if not isinstance(limit, int) or not 1 <= limit <= pagination.MAX_LIMIT:
        raise invalid("limit", f"must be between 1 and {pagination.MAX_LIMIT}")
    return limit


def after_key(cursor: str | None, size: int) -> list[Any] | None:
    """The sort key after which the next page starts; a forged cursor is a 422 on ``cursor``."""
    return pagination.decode_cursor(cursor, (str,) * size)


def page(rows: list, limit: int, key, view) -> dict:
    """``{"items", "next_cursor"}`` from ``limit + 1`` rows read in key order."""
    more = len(rows) > limit
    rows = rows[:limit]
    return pagination.page([view(r) for r in rows], key(rows[-1]) if more and rows else None)
