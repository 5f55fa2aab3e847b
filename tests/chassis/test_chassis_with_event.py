"""``UnitOfWork.execute_with_event(..., changed_only=True)``: an ``UPDATE`` and the event it
implies, the event stored only when the update changed a row; on PostgreSQL one statement (the
update a data-modifying CTE the outbox row is selected from), on SQLite two."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from mpp_chassis.tables import add_chassis_tables
from tests.support.usecases import UseCases

metadata = sa.MetaData()
add_chassis_tables(metadata)
seats = sa.Table(
    "seats",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("holder", sa.String(20), nullable=True),
)
# the seat goes to its first taker only
TAKE = (
    sa.update(seats)
    .where(seats.c.id == sa.bindparam("seat"), seats.c.holder.is_(None))
    .values(holder=sa.bindparam("taker"))
)


@pytest.fixture
def desk(db_url_factory):
    url = db_url_factory("with_event")
    engine = sa.create_engine(url)
    metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(sa.insert(seats), [{"id": "A1"}, {"id": "A2"}])
    engine.dispose()
    desk = UseCases(url, metadata, "test")
    desk.statements = []
    sa.event.listen(
        desk.engine,
        "before_cursor_execute",
        # a prepared statement (mpp_chassis.prepared) as its own text
        lambda _c, _cur, _statement, _params, context, _many: desk.statements.append(
            context.statement
        ),
    )
    desk.backend = db_url_factory.backend
    yield desk
    desk.dispose()


def take(uow, seat: str, taker: str) -> str | None:
    return uow.execute_with_event(
        TAKE,
        {"seat": seat, "taker": taker},
        "payment_not_required",  # any registered type: its payload names the seat and taker
        {"ticket_id": seat, "agency_id": taker, "service_id": "seating"},
        changed_only=True,
    )


def holders(desk: UseCases) -> dict:
    with desk.engine.connect() as conn:
        return dict(conn.execute(sa.select(seats.c.id, seats.c.holder)).all())


def test_the_event_is_stored_only_when_the_update_changed_a_row(desk):
    first = desk(take, "A1", "budi")  # the stored event's id
    taken = desk.statements[:]
    assert desk(take, "A1", "siti") is None  # taken already: no change, no event
    assert desk(take, "A9", "siti") is None  # no such seat
    assert desk(take, "A2", "siti") is not None
    assert holders(desk) == {"A1": "budi", "A2": "siti"}
    with desk.engine.connect() as conn:
        ids = conn.execute(sa.select(metadata.tables["outbox"].c.event_id)).scalars().all()
    assert first in ids
    assert [(e["ticket_id"], e["agency_id"]) for e in desk.events("payment_not_required")] == [
        ("A1", "budi"),
        ("A2", "siti"),
    ]
    writes = [" ".join(s.split()) for s in taken]
    writes = [s for s in writes if s.upper().startswith(("WITH", "UPDATE", "INSERT"))]
    if desk.backend == "postgres":
        assert len(writes) == 1 and writes[0].startswith("WITH change AS (UPDATE seats"), writes
        assert "INSERT INTO outbox" in writes[0]
    else:
        assert [w.split()[0] for w in writes] == ["UPDATE", "INSERT"], writes


def test_the_event_rolls_back_with_the_update(desk):
    def take_then_fail(uow) -> None:
        assert take(uow, "A1", "budi")
        raise RuntimeError("the worker fails after the change")

    with pytest.raises(RuntimeError):
        desk(take_then_fail)
    assert holders(desk) == {"A1": None, "A2": None}
    assert desk.events("payment_not_required") == []
