"""Statements that ask for it run as server-side prepared statements on PostgreSQL, planned once
per connection instead of at every call (``mpp_chassis.prepared``); their results are what the
same statement sent as text gives, and nothing changes on SQLite."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from mpp_chassis.engine import make_engine
from mpp_chassis.prepared import PREPARE, positional, prepared_statements

metadata = sa.MetaData()
items = sa.Table(
    "items",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("label", sa.String(40), nullable=False),
    sa.Column("seen", sa.DateTime(timezone=True)),
    sa.Column("count", sa.Integer, nullable=False, server_default="0"),
)
BY_ID = sa.select(items).where(items.c.id == sa.bindparam("id")).execution_options(**PREPARE)
BY_IDS = (
    sa.select(items.c.id)
    .where(
        items.c.id.in_(sa.bindparam("ids", expanding=True)),
        items.c.label.like(sa.literal_column("'a%'")),
    )
    .order_by(items.c.id)
    .execution_options(**PREPARE)
)
BUMP = (
    sa.update(items)
    .where(items.c.id == sa.bindparam("key"), items.c.count < sa.bindparam("most"))
    .values(count=items.c.count + 1, seen=sa.bindparam("seen"))
    .returning(items.c.count)
    .execution_options(**PREPARE)
)


def test_placeholders_are_numbered_once_per_name_and_percent_signs_unescaped():
    text, order = positional("SELECT %(a)s, %(b_1)s WHERE x LIKE 'z%%' AND y = %(a)s OR w = %(c)s")
    assert text == "SELECT $1, $2 WHERE x LIKE 'z%' AND y = $1 OR w = $3"
    assert order == ["a", "b_1", "c"]


@pytest.fixture(params=["sqlite", "postgres"])
def engine(request, tmp_path, pg_url_factory):
    url = f"sqlite:///{tmp_path}/p.db" if request.param == "sqlite" else pg_url_factory()
    engine = make_engine(url, pool_size=1, max_overflow=0)
    metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(items.insert(), [{"id": i, "label": f"{i}-label"} for i in ("a1", "a2", "b1")])
    yield engine
    engine.dispose()


def prepared_here(conn) -> list[str]:
    if conn.dialect.name != "postgresql":
        return []
    return list(conn.exec_driver_sql("SELECT statement FROM pg_prepared_statements").scalars())


def test_opted_in_statements_run_prepared_and_give_the_same_rows(engine):
    from datetime import UTC, datetime

    now = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
    for _ in range(7):  # past PostgreSQL's five custom plans: a generic one may take over
        with engine.begin() as conn:
            assert conn.execute(BY_ID, {"id": "a2"}).one().label == "a2-label"
            assert conn.execute(BY_ID, {"id": "zz"}).first() is None
            assert conn.execute(BY_IDS, {"ids": ["b1", "a2", "a1"]}).scalars().all() == [
                "a1",
                "a2",
            ]
            assert conn.execute(sa.select(items.c.id).where(items.c.id == "b1")).scalar() == "b1"
    with engine.begin() as conn:
        for count in range(1, 9):
            bumped = conn.execute(BUMP, {"key": "a1", "most": 8, "seen": now})
            assert bumped.scalar() == count
            if engine.dialect.name == "postgresql":  # EXECUTE's command tag is the UPDATE's
                assert bumped.rowcount == 1
        unchanged = conn.execute(BUMP, {"key": "a1", "most": 8, "seen": now})
        assert unchanged.first() is None
        seen = conn.execute(BY_ID, {"id": "a1"}).one().seen
        assert seen == (now if engine.dialect.name == "postgresql" else now.replace(tzinfo=None))
        statements = prepared_here(conn)
    if engine.dialect.name == "postgresql":
        # one connection: each opted-in statement prepared once (BY_IDS once per list length),
        # the plain select never
        assert len(statements) == 3, statements
        assert all(s.startswith("PREPARE mpp_") for s in statements)
        assert any("LIKE 'a%'" in s and "$1" in s for s in statements), statements
    else:
        assert statements == []


def test_a_new_connection_prepares_again(engine):
    with engine.connect() as conn:
        assert conn.execute(BY_ID, {"id": "a1"}).one().id == "a1"
        conn.invalidate()  # the server's session, and its prepared statements, are gone
    with engine.connect() as conn:
        assert conn.execute(BY_ID, {"id": "a1"}).one().id == "a1"
        assert len(prepared_here(conn)) == (1 if engine.dialect.name == "postgresql" else 0)


@pytest.mark.parametrize("setting", ["off", "0", "false"])
def test_prepared_statements_can_be_switched_off(setting, pg_url_factory):
    """Behind a pooler in transaction mode (docs/operations.md) they must be."""
    assert prepared_statements({}) and prepared_statements({"PREPARED_STATEMENTS": "on"})
    assert not prepared_statements({"PREPARED_STATEMENTS": setting})
    engine = make_engine(pg_url_factory(), pool_size=1, max_overflow=0, prepared=False)
    try:
        metadata.create_all(engine)
        with engine.connect() as conn:
            assert conn.execute(BY_ID, {"id": "a1"}).first() is None
            assert prepared_here(conn) == []
    finally:
        engine.dispose()


def test_a_statement_prepared_in_a_transaction_rolled_back_stays_prepared(engine):
    """PostgreSQL keeps a PREPARE whose transaction rolls back: the connection's names stay true."""
    with engine.connect() as conn:
        with conn.begin() as transaction:
            assert conn.execute(BY_ID, {"id": "a1"}).one().id == "a1"
            transaction.rollback()
        assert conn.execute(BY_ID, {"id": "a2"}).one().id == "a2"
