"""Pooled PostgreSQL connections: pinged only after sitting idle, and a dead one is replaced before
a worker uses it (a database restart or a killed backend costs no request)."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from mpp_chassis import db
from mpp_chassis import engine as engines


@pytest.fixture
def engine(pg_url_factory):
    engine = db.make_engine(pg_url_factory("mpp_pool"))
    yield engine
    engine.dispose()


def backend_pid(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(text("SELECT pg_backend_pid()")).scalar_one()


def count_pings(engine, monkeypatch) -> list:
    pings = []
    real = engine.dialect.do_ping

    def counting(dbapi_conn):
        pings.append(1)
        return real(dbapi_conn)

    monkeypatch.setattr(engine.dialect, "do_ping", counting)
    return pings


def test_a_connection_in_steady_use_is_not_pinged(engine, monkeypatch):
    pings = count_pings(engine, monkeypatch)
    first = backend_pid(engine)
    for _ in range(20):
        assert backend_pid(engine) == first  # the same pooled connection, reused
    assert pings == []


def test_an_idle_connection_is_pinged_and_a_dead_one_replaced(engine, monkeypatch):
    pings = count_pings(engine, monkeypatch)
    monkeypatch.setattr(engines, "PING_AFTER_IDLE_SECONDS", 0.0)  # every checked-in one is idle
    victim = backend_pid(engine)
    admin = create_engine(engine.url, poolclass=NullPool)  # not the pool under test
    with admin.connect() as conn:
        killed = conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": victim})
        assert killed.scalar_one() is True
    admin.dispose()
    # the pooled connection to the killed backend is found dead at checkout and replaced:
    # the caller gets a working connection, not an error
    replacement = backend_pid(engine)
    assert replacement != victim
    assert len(pings) == 1  # the dead one; its fresh replacement needs no ping


def test_connections_up_to_the_pool_size_are_reused_not_reopened(pg_url_factory):
    """Every worker of a busy service holds a connection at once. Within the pool size they are
    the same backends round after round; beyond it (overflow) each round opened and closed new
    ones: a forked PostgreSQL backend per request, which cost a busy queue service a sixth of its
    requests' database time."""
    engine = db.make_engine(pg_url_factory("mpp_pool_size"), pool_size=12)
    try:
        rounds = []
        for _ in range(3):
            held = [engine.connect() for _ in range(12)]
            rounds.append({c.execute(text("SELECT pg_backend_pid()")).scalar_one() for c in held})
            for conn in held:
                conn.close()
        assert len(rounds[0]) == 12
        assert rounds[0] == rounds[1] == rounds[2]
    finally:
        engine.dispose()


def test_the_database_dependency_keeps_a_connection_for_every_worker(pg_url_factory):
    from types import SimpleNamespace

    from mpp_queue.adapters.tables import metadata

    provider = db.Database(metadata)
    provider.container = SimpleNamespace(
        config={"DB_URL": pg_url_factory("mpp_pool_workers"), "AMQP_URI": "memory://"},
        max_workers=17,
        service_name="queue",
    )
    provider.setup()
    try:
        assert provider.engine.pool.size() == 17 + db.POOL_SPARE
        assert provider.autocommit.pool.size() == db.autocommit_pool_size(17) == 4
    finally:
        provider.engine.dispose()
        provider.autocommit.dispose()


def test_a_process_never_holds_more_connections_than_its_pool(pg_url_factory):
    """The mall's four processes share one PostgreSQL server (``max_connections`` is 100 by
    default): with overflow, a busy queue alone held over 40 and the server refused the others
    ("too many clients"). A checkout beyond the pool now waits for a returned connection."""
    import threading
    from types import SimpleNamespace

    from mpp_queue.adapters.tables import metadata

    url = pg_url_factory("mpp_pool_bound")
    provider = db.Database(metadata)
    provider.container = SimpleNamespace(
        config={"DB_URL": url, "AMQP_URI": "memory://"}, max_workers=3, service_name="queue"
    )
    provider.setup()
    bound = 3 + db.POOL_SPARE
    held = [provider.engine.connect() for _ in range(bound)]
    got: list = []
    waiter = threading.Thread(target=lambda: got.append(provider.engine.connect()), daemon=True)
    try:
        waiter.start()
        waiter.join(1.0)  # a checkout beyond the pool does not open a connection: it waits
        assert waiter.is_alive() and got == []
        held.pop().close()
        waiter.join(10)
        assert len(got) == 1  # and takes the one returned
        held.extend(got)
        database = url.rsplit("/", 1)[1]
        with create_engine(url, poolclass=NullPool).connect() as conn:
            opened = conn.execute(
                text(
                    "SELECT count(*) FROM pg_stat_activity"
                    " WHERE datname = :d AND pid <> pg_backend_pid()"
                ),
                {"d": database},
            ).scalar_one()
        assert opened == bound
    finally:
        for conn in held:
            conn.close()
        provider.engine.dispose()
        provider.autocommit.dispose()


def test_execute_now_commits_on_its_own_through_connections_kept_in_autocommit(pg_url_factory):
    """``execute_now`` (the hot counter rows' claim) is committed by itself: seen by others at
    once and kept when the unit of work rolls back; its connections never leave autocommit, so
    none is switched back (a ``SET`` round trip) when it returns to the pool."""
    from types import SimpleNamespace

    from mpp_chassis.migrate import upgrade
    from mpp_queue.adapters.tables import metadata

    url = pg_url_factory("mpp_pool_now")
    upgrade("queue", url)
    provider = db.Database(metadata)
    provider.container = SimpleNamespace(
        config={"DB_URL": url, "AMQP_URI": "memory://"}, max_workers=4, service_name="queue"
    )
    provider.setup()
    observer = create_engine(url, poolclass=NullPool)
    try:
        worker = type("Worker", (), {"context_data": {}})()  # the provider keys sessions by it
        uow = provider.get_dependency(worker)
        uow.session.execute(text("SELECT 1"))  # the unit of work's own transaction is open
        statement = text("INSERT INTO ticket_sequences (prefix, day, last_seq) VALUES ('Z', :d, 7)")
        assert uow.execute_now(statement, {"d": "2026-11-28"}) == 1
        with observer.connect() as conn:  # committed already, before the unit of work is
            seen = conn.execute(text("SELECT last_seq FROM ticket_sequences WHERE prefix = 'Z'"))
            assert seen.scalar_one() == 7
        uow.rollback()
        with observer.connect() as conn:
            kept = conn.execute(text("SELECT count(*) FROM ticket_sequences WHERE prefix = 'Z'"))
            assert kept.scalar_one() == 1
        with provider.autocommit.connect() as conn:
            assert conn.connection.dbapi_connection.autocommit is True
    finally:
        observer.dispose()
        provider.engine.dispose()
        provider.autocommit.dispose()
