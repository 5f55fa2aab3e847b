"""The SQLAlchemy engines of the chassis: tuned per dialect, bounded pools, idle connections
checked before use. Used by the unit of work (:mod:`mpp_chassis.db`) and the outbox tools
(:mod:`mpp_chassis.outbox`), which import it and not each other's modules."""

from __future__ import annotations

import time

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DisconnectionError

from mpp_chassis import prepared as prepare


def make_engine(
    url: str, *, pool_size: int = 10, max_overflow: int = 20, prepared: bool = True, **options
) -> Engine:
    """An engine tuned for the dialect: WAL and a busy timeout for SQLite files.

    ``pool_size`` connections are kept open. A connection checked out beyond them (overflow, at
    most ``max_overflow``) is closed when it is returned, so a pool smaller than the number of
    workers that use it at once opens and closes a PostgreSQL connection (a forked backend) on a
    share of requests. With ``max_overflow=0`` the pool is a hard bound: a checkout beyond it
    waits for a returned connection (up to the pool's 30 s timeout).
    """
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 15})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):  # pragma: no cover - trivial
            cursor = dbapi_conn.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        return engine
    engine = create_engine(
        url, pool_size=pool_size, max_overflow=max_overflow, pool_recycle=3600, **options
    )
    _ping_when_idle(engine)
    if prepared:  # statements that ask for it run prepared (mpp_chassis.prepared)
        prepare.install(engine)
    return engine


# a session whose ``info`` holds this key runs each statement alone, in autocommit (PostgreSQL):
# a read-only entry point's (``Database(read_only=…)``)
STATEMENTS_ALONE = "mpp_autocommit"


def statements_alone(session, _transaction, connection) -> None:
    """An ``after_begin`` listener: a session marked ``STATEMENTS_ALONE`` (PostgreSQL) puts its
    connection in autocommit before its first statement; psycopg2 then sends no ``BEGIN``, and
    commits and rollbacks send nothing. psycopg2's ``autocommit`` switch is client-side, where
    SQLAlchemy's ``isolation_level="AUTOCOMMIT"`` costs a ``SET default_transaction_isolation``
    when the connection returns to the pool."""
    if session.info.get(STATEMENTS_ALONE):
        connection.connection.dbapi_connection.autocommit = True


def statements_in_transactions(dbapi_connection, _record) -> None:
    """A pooled connection goes back in transactions (:func:`statements_alone`), client-side."""
    if dbapi_connection is not None and dbapi_connection.autocommit:
        dbapi_connection.autocommit = False


PING_AFTER_IDLE_SECONDS = 1.0
POOL_SPARE = 2  # connections kept beyond the worker count: the outbox relay's, and one spare


def autocommit_pool_size(max_workers: int) -> int:
    """Connections for ``execute_now``: each is held for one short statement, so a quarter of
    the workers share them (a worker holds its unit of work's connection meanwhile, so a pool as
    large as the workers doubled a busy process's connections)."""
    return max(2, max_workers // 4)


def _ping_when_idle(engine: Engine) -> None:
    """Check a pooled connection before use only if it sat idle for a while.

    ``pool_pre_ping`` pings on every checkout: a round trip and ~9 % of a busy service's CPU. A
    connection used within the last second is alive as far as a ping could tell, so only idle
    ones are pinged (as HikariCP's ``aliveBypassWindow``); a dead one is replaced before the
    worker sees it (a database restart costs no request once its connections were idle).
    """

    @event.listens_for(engine, "checkin")
    def _returned(_dbapi_conn, record) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checked_out(dbapi_conn, record, _proxy) -> None:
        idle_since = record.info.get("idle_since")
        if idle_since is None or time.monotonic() - idle_since < PING_AFTER_IDLE_SECONDS:
            return
        try:
            alive = engine.dialect.do_ping(dbapi_conn)
        except Exception as exc:
            raise DisconnectionError("pooled connection is gone") from exc
        if alive is False:
            raise DisconnectionError("pooled connection is gone")
