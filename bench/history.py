"""Bulk-load realistic ticket history into the queue service's PostgreSQL database.

History rows are past days only, in finished states (done 85 %, no_show 8 %, cancelled 5 %,
transferred 2 %), spread over the bench's services, with full timestamps, fees and NIK hashes, so
indexes and planner statistics look like a mall that has been open for months. Rows are generated
server-side (``INSERT … SELECT … generate_series``) in batches, then ``VACUUM (ANALYZE)`` runs:
rows that accumulated over months have long been vacuumed and analysed, while a million inserted
at once may otherwise wake autovacuum in the middle of the measurement that follows. The table
is reflected, so columns added by later migrations are filled with their server default, or with
a neutral value when NOT NULL without one.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import sqlalchemy as sa

PER_DAY = 2000  # tickets per past day; 1M rows span ~500 days

_KNOWN = {
    "id": "md5('h' || g)::uuid::text",
    "journey_id": "md5('j' || g)::uuid::text",
    "number": "'H-' || lpad(((g % {per_day}) + 1)::text, 4, '0')",
    "day": "(current_date - 1 - (g / {per_day})::int)",
    "agency_id": "(:agencies)[(g % :n_agencies) + 1]",
    "service_id": "(:services)[(g % :n_services) + 1]",
    "status": (
        "(CASE WHEN g % 100 < 85 THEN 'done' WHEN g % 100 < 93 THEN 'no_show' "
        "WHEN g % 100 < 98 THEN 'cancelled' ELSE 'transferred' END)"
    ),
    "priority": "(CASE WHEN g % 10 = 0 THEN 'elderly' ELSE NULL END)",
    "nik_hash": "encode(sha256(('nik' || g)::bytea), 'hex')",
    "nik_last4": "lpad((g % 10000)::text, 4, '0')",
    "phone": "NULL",
    "issued_at": "{base} + make_interval(mins => (g % {per_day}) / 6)",
    "queued_at": "{base} + make_interval(mins => (g % {per_day}) / 6)",
    "call_count": "(CASE WHEN g % 100 BETWEEN 85 AND 92 THEN 3 ELSE 1 END)",
    "called_at": "{base} + make_interval(mins => (g % {per_day}) / 6 + 9)",
    "last_called_at": "{base} + make_interval(mins => (g % {per_day}) / 6 + 9)",
    "started_at": "{base} + make_interval(mins => (g % {per_day}) / 6 + 10)",
    "completed_at": "{base} + make_interval(mins => (g % {per_day}) / 6 + 22)",
    "ended_at": "{base} + make_interval(mins => (g % {per_day}) / 6 + 22)",
    "counter_id": "(:counters)[(g % :n_counters) + 1]",
    "fee_idr": "(CASE WHEN g % 3 = 0 THEN 350000 ELSE 0 END)",
    "payment_id": "NULL",
    "payment_status": "(CASE WHEN g % 3 = 0 THEN 'paid' ELSE NULL END)",
    "rating_token": "NULL",
    "rating_expires_at": "NULL",
}
_BASE = (
    "((current_date - 1 - (g / {per_day})::int)::timestamp AT TIME ZONE 'Asia/Jakarta'"
    " + interval '8 hours')"
)


def _neutral(column: sa.Column) -> str:
    try:
        kind = column.type.python_type
    except NotImplementedError:
        kind = str
    if kind is bool:
        return "false"
    if kind in (int, float):
        return "0"
    if kind is dict or kind is list:
        return "'{}'"
    return "''"


def insert_sql(table: sa.Table) -> str:
    columns, values = [], []
    for column in table.columns:
        if column.name in _KNOWN:
            expr = _KNOWN[column.name].format(per_day=PER_DAY, base=_BASE.format(per_day=PER_DAY))
        elif column.nullable or column.server_default is not None:
            continue
        else:
            expr = _neutral(column)
        columns.append(f'"{column.name}"')
        values.append(expr)
    return (
        f"INSERT INTO tickets ({', '.join(columns)}) "
        f"SELECT {', '.join(values)} FROM generate_series(:start, :stop) AS g"
    )


def load_history(
    db_url: str,
    total: int,
    *,
    agencies: Sequence[str],
    services: Sequence[str],
    counters: Sequence[str],
    batch: int = 50_000,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Add history rows numbered from the current count up to ``total``; return rows added."""
    engine = sa.create_engine(db_url)
    try:
        table = sa.Table("tickets", sa.MetaData(), autoload_with=engine)
        statement = sa.text(insert_sql(table))
        params = {
            "agencies": list(agencies),
            "services": list(services),
            "counters": list(counters),
            "n_agencies": len(agencies),
            "n_services": len(services),
            "n_counters": len(counters),
        }
        with engine.connect() as conn:
            have = conn.execute(
                sa.text("SELECT count(*) FROM tickets WHERE number LIKE 'H-%'")
            ).scalar_one()
        added = 0
        for start in range(have, total, batch):
            stop = min(total, start + batch) - 1
            with engine.begin() as conn:
                conn.execute(statement, {**params, "start": start, "stop": stop})
            added += stop - start + 1
            if progress:
                progress(stop - start + 1)
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(sa.text("VACUUM (ANALYZE) tickets"))
        return added
    finally:
        engine.dispose()
