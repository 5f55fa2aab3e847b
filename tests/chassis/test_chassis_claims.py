"""A handler's claims and its whole effect in one statement (``UnitOfWork.apply_claimed``), on
SQLite and PostgreSQL: an event is applied once however often it comes, in one batch or again;
claims and effect commit together or not at all; on PostgreSQL the batch is one statement sent
in autocommit, and the connection goes back to the pool in transactions again."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from mpp_chassis.claims import ClaimedChange
from mpp_chassis.tables import add_chassis_tables
from mpp_chassis.types import UtcDateTime
from tests.support.usecases import UseCases

HANDLER = "handle_word_said"
metadata = sa.MetaData()
add_chassis_tables(metadata)
said = sa.Table(
    "said",
    metadata,
    sa.Column("n", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("event_id", sa.String(36), nullable=False),
    sa.Column("word", sa.String(20), nullable=False),
    sa.Column("at", UtcDateTime(), nullable=False),
)
# not idempotent on purpose: an event applied twice leaves two rows
SAY = ClaimedChange(
    "INSERT INTO said (event_id, word, at) SELECT event_id, word, at FROM claimed",
    word=said.c.word.type,
    at=said.c.at.type,
)
AT = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def word_said(word: str | None) -> dict:
    """An envelope as a handler receives it (only its id and payload are read)."""
    return {"id": str(uuid.uuid4()), "payload": {"word": word, "at": AT}}


@pytest.fixture
def desk(db_url_factory):
    url = db_url_factory("claims")
    engine = sa.create_engine(url)
    metadata.create_all(engine)
    engine.dispose()
    desk = UseCases(url, metadata, "test")
    desk.statements = []

    def _seen(conn, _cursor, statement, _params, _context, _many) -> None:
        autocommit = getattr(conn.connection.dbapi_connection, "autocommit", None)  # psycopg2
        desk.statements.append((statement, autocommit))

    sa.event.listen(desk.engine, "before_cursor_execute", _seen)
    desk.backend = db_url_factory.backend
    yield desk
    desk.dispose()


def handle(desk: UseCases, events: list[dict]) -> None:
    """As a batch handler does: apply, then commit (rolled back if it raises)."""
    desk(lambda uow: uow.apply_claimed(events, HANDLER, SAY))


def rows(desk: UseCases, table: str) -> list[tuple]:
    with desk.engine.connect() as conn:
        return [tuple(r) for r in conn.execute(sa.text(f"SELECT * FROM {table}"))]  # noqa: S608


def words(desk: UseCases) -> list[tuple[str, str]]:
    with desk.engine.connect() as conn:
        found = conn.execute(sa.select(said.c.event_id, said.c.word, said.c.at).order_by(said.c.n))
        return [tuple(r) for r in found]


def test_an_event_twice_in_a_batch_or_again_later_is_applied_once(desk):
    one, two, three = word_said("satu"), word_said("dua"), word_said("tiga")
    handle(desk, [one, two, one])
    assert words(desk) == [(one["id"], "satu", AT), (two["id"], "dua", AT)]
    handle(desk, [two, three, one])  # a redelivery, with a new event
    assert [w[1] for w in words(desk)] == ["satu", "dua", "tiga"]
    handle(desk, [three])
    assert len(words(desk)) == 3
    assert {r[0] for r in rows(desk, "processed_events")} == {one["id"], two["id"], three["id"]}


def test_claims_and_effect_commit_together_or_not_at_all(desk):
    fine, poison = word_said("baik"), word_said(None)  # a word must not be NULL
    with pytest.raises(sa.exc.IntegrityError):
        handle(desk, [fine, poison])
    assert rows(desk, "processed_events") == [], "a claim outlived its failed effect"
    assert words(desk) == []
    handle(desk, [fine])  # redelivered alone, as the batch's fallback does: applied now
    assert words(desk) == [(fine["id"], "baik", AT)]


def test_on_postgresql_a_batch_is_one_statement_in_autocommit(desk):
    if desk.backend != "postgres":
        pytest.skip("SQLite claims, then applies, in the handler's transaction")
    desk.statements.clear()
    handle(desk, [word_said("satu"), word_said("dua")])
    assert len(desk.statements) == 1
    statement, autocommit = desk.statements[0]
    assert autocommit, "psycopg2 sends no BEGIN"
    # the batch's statement, prepared on the connection's first use (mpp_chassis.prepared)
    assert statement.startswith("EXECUTE mpp_"), statement
    with desk.engine.connect() as conn:  # the pooled connection is in transactions again
        assert conn.connection.dbapi_connection.autocommit is False
        conn.execute(sa.text("INSERT INTO said (event_id, word, at) VALUES ('x', 'y', now())"))
        conn.rollback()
    assert len(words(desk)) == 2


def test_apply_claimed_must_be_a_handlers_first_statement_on_postgresql(desk):
    if desk.backend != "postgres":
        pytest.skip("on SQLite it joins the handler's transaction")

    def late(uow):
        uow.session.execute(sa.text("SELECT 1"))
        uow.apply_claimed([word_said("satu")], HANDLER, SAY)

    with pytest.raises(RuntimeError, match="nothing may precede it"):
        desk(late)
    assert words(desk) == []
