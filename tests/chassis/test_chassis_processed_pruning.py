"""Handled-event ids are forgotten once older than the retention, never sooner: an event that
comes again within it (a relay re-publishing after a crash, a retry) is still recognised."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import MetaData, create_engine, insert, select
from sqlalchemy.orm import Session

from mpp_chassis.db import UnitOfWork, prune_processed_events
from mpp_chassis.tables import add_chassis_tables

pytestmark = pytest.mark.integration


def test_old_handled_ids_are_pruned_and_recent_ones_still_deduplicate(db_url_factory):
    metadata = MetaData()
    outbox, processed = add_chassis_tables(metadata)
    engine = create_engine(db_url_factory("pruning"))
    metadata.create_all(engine)
    now = datetime.now(UTC)
    with engine.begin() as conn:
        conn.execute(
            insert(processed),
            [
                {"event_id": "old", "handler": "h", "processed_at": now - timedelta(days=8)},
                {"event_id": "recent", "handler": "h", "processed_at": now - timedelta(days=6)},
            ],
        )
    assert prune_processed_events(engine, processed, now - timedelta(days=7)) == 1
    with engine.connect() as conn:
        assert conn.execute(select(processed.c.event_id)).scalars().all() == ["recent"]
    with Session(engine) as session:
        uow = UnitOfWork(
            session,
            outbox,
            processed,
            source="t",
            mall="m",
            context_data={},
            on_commit=lambda _rows: None,
        )
        assert uow.claim_event("recent", "h") is False  # still recognised: not applied twice
        assert uow.claim_event("old", "h") is True  # forgotten beyond the retention
    engine.dispose()
