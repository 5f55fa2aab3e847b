"""Per-key counters (ticket numbers, receipt numbers): one atomic upsert each."""

from __future__ import annotations

import functools
from typing import Any

from sqlalchemy import bindparam, text
from sqlalchemy.orm import Session


def next_in_sequence(
    session: Session, table, keys: dict[str, Any], column: str = "last_seq"
) -> int:
    """Atomically increment and return a counter row (insert at 1 if absent).

    An upsert with ``RETURNING``, in the syntax PostgreSQL and SQLite share: two processes asking
    at the same instant never receive the same value.
    """
    return session.execute(_sequence_statement(table, tuple(keys), column), keys).scalar_one()


@functools.cache
def _sequence_statement(table, keys: tuple[str, ...], column: str):
    """Written as text, built once per table and key columns: SQLAlchemy cannot cache a compiled
    ``ON CONFLICT`` construct, and compiling it anew cost more than executing it."""
    names = ", ".join(keys)
    return text(
        f"INSERT INTO {table.name} ({names}, {column}) "  # noqa: S608 - names from a Table
        f"VALUES ({', '.join(':' + k for k in keys)}, 1) "
        f"ON CONFLICT ({names}) DO UPDATE SET {column} = {table.name}.{column} + 1 "
        f"RETURNING {column}"
    ).bindparams(*(bindparam(k, type_=table.c[k].type) for k in keys))  # same storage as Core
