"""Use cases driven as an entry point drives them, without nameko or a broker: one unit of work
per call on a real database, committed on success and rolled back on error (the ``usecases``
tier of docs/testing.md)."""

from __future__ import annotations

import json
from collections.abc import Callable

from sqlalchemy import MetaData, select
from sqlalchemy.orm import sessionmaker

from mpp_chassis.db import UnitOfWork, make_engine
from mpp_contracts.envelope import read_envelope


class UseCases:
    """``desk(use_case, *args)`` runs one use case in its own transaction; ``desk.events(type)``
    reads the payloads it left in the outbox (services without one: ``events`` is unavailable)."""

    def __init__(self, url: str, metadata: MetaData, source: str) -> None:
        self.engine = make_engine(url)
        self.sessions = sessionmaker(bind=self.engine, expire_on_commit=False)
        self.outbox = metadata.tables.get("outbox")
        self.processed = metadata.tables.get("processed_events")
        self.source = source

    def uow(self) -> UnitOfWork:
        return UnitOfWork(
            self.sessions(),
            self.outbox,
            self.processed,
            source=self.source,
            mall="test",
            context_data={},
            on_commit=lambda _rows: None,
        )

    def __call__(self, use_case: Callable, *args, **kwargs):
        uow = self.uow()
        try:
            result = use_case(uow, *args, **kwargs)
            uow.commit()
            return result
        except Exception:
            uow.rollback()
            raise
        finally:
            uow.session.close()

    def events(self, event_type: str) -> list[dict]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(self.outbox.c.body)
                .where(self.outbox.c.event_type == event_type)
                .order_by(self.outbox.c.seq)
            ).scalars()
            return [json.loads(body)["payload"] for body in rows]

    def delivered(self, event_type: str) -> list[dict]:
        """The payloads as a consumer's handler receives them (loaded by the contract)."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(self.outbox.c.body)
                .where(self.outbox.c.event_type == event_type)
                .order_by(self.outbox.c.seq)
            ).scalars()
            return [read_envelope(json.loads(body))["payload"] for body in rows]

    def dispose(self) -> None:
        self.engine.dispose()
