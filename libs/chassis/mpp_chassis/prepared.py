"""Server-side prepared statements, for the statements that ask for one (PostgreSQL).

psycopg2 sends every statement as text, so PostgreSQL parses and plans it each time. For the
hottest reads the plan cost far more than the execution: reading a ticket with its service's
and counter's names planned in ~226 µs and ran in ~40 µs (``pg_stat_statements`` with
``track_planning``, a journey bench, 2026-12-06), because the planner weighs every index of the
three tables (13 on ``tickets``) each time. A prepared statement is planned for its first
executions and then, where a generic plan is as good, not again.

A statement opts in with ``.execution_options(**PREPARE)``. On a connection's first use of it,
``PREPARE`` is sent with its ``%(name)s`` placeholders numbered ``$1 … $n`` (PostgreSQL infers
their types from where they stand); every execution then sends ``EXECUTE name(…)`` with the same
parameters, which psycopg2 quotes as it would have. The names live with the connection
(``Connection.info``): a new connection prepares again, and a pooled one keeps them (the pool's
reset is a rollback, which keeps prepared statements).

Only statements whose best plan does not depend on their parameters should opt in (lookups by a
key): a generic plan cannot use a partial index that a parameter's value would have selected.
Every parameter must stand where its type is known (a column it is compared with or assigned
to, or a cast), else ``PREPARE`` fails: the statement's tests say so at once. Statements given
several parameter sets at once (``executemany``) are sent as before.
"""

from __future__ import annotations

import re

from sqlalchemy import event
from sqlalchemy.engine import Engine

PREPARE_OPTION = "mpp_prepare"
PREPARE = {PREPARE_OPTION: True}  # ``statement.execution_options(**PREPARE)``
PREFIX = "mpp_"  # the statements' names: mpp_1, mpp_2 … on each connection
_NAMES = "mpp_prepared"  # Connection.info: statement text -> (name, parameter names in order)
_PLACEHOLDER = re.compile(r"%%|%\(([^)]+)\)s")


def prepared_statements(config) -> bool:
    """``PREPARED_STATEMENTS`` (on by default): off behind a pooler in transaction mode, where a
    statement prepared on one server connection is missing on the next (docs/operations.md)."""
    return str(config.get("PREPARED_STATEMENTS", "on")).strip().lower() not in OFF


OFF = ("0", "off", "false", "no")


def install(engine: Engine) -> None:
    """Prepare the statements that ask for it on this engine's connections (psycopg2)."""
    if engine.dialect.name == "postgresql" and engine.dialect.driver == "psycopg2":
        event.listen(engine, "before_cursor_execute", _execute_prepared, retval=True)


def positional(statement: str) -> tuple[str, list[str]]:
    """The statement with each ``%(name)s`` numbered ``$k`` (one number per name, in order of
    first appearance) and ``%%`` unescaped, and the names in that order."""
    order: list[str] = []

    def number(match: re.Match) -> str:
        name = match.group(1)
        if name is None:
            return "%"
        if name not in order:
            order.append(name)
        return f"${order.index(name) + 1}"

    return _PLACEHOLDER.sub(number, statement), order


def _execute_prepared(conn, cursor, statement, parameters, context, executemany):
    if executemany or context is None or not context.execution_options.get(PREPARE_OPTION):
        return statement, parameters
    if not isinstance(parameters, dict):  # psycopg2's paramstyle is pyformat: always a dict
        return statement, parameters
    prepared = conn.info.setdefault(_NAMES, {})
    known = prepared.get(statement)
    if known is None:
        text, order = positional(statement)
        name = f"{PREFIX}{len(prepared) + 1}"
        cursor.execute(f"PREPARE {name} AS {text}")
        known = prepared[statement] = (name, order)
    name, order = known
    arguments = ", ".join(f"%({key})s" for key in order)
    return (f"EXECUTE {name}({arguments})" if order else f"EXECUTE {name}"), parameters
