"""A real queue database (SQLite and PostgreSQL) driven through the use cases, one transaction
per call as the RPC entry points do, with the clock in the test's hands."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from sqlalchemy import select
from sqlalchemy.orm import sessionmaker

from mpp_chassis.db import UnitOfWork, make_engine
from mpp_chassis.migrate import upgrade
from mpp_queue import usecases
from mpp_queue.adapters.tables import metadata

OUTBOX = metadata.tables["outbox"]
PROCESSED = metadata.tables["processed_events"]


class Floor:
    """Calls use cases like the service does: commit on success, roll back on error."""

    def __init__(self, url: str, settings: usecases.Settings) -> None:
        self.engine = make_engine(url)
        self.sessions = sessionmaker(bind=self.engine, expire_on_commit=False)
        self.settings = settings
        self.now = datetime(2026, 12, 1, 1, 0, tzinfo=UTC)  # 08:00 in Jakarta

    def uow(self) -> UnitOfWork:
        return UnitOfWork(
            self.sessions(),
            OUTBOX,
            PROCESSED,
            source="queue",
            mall="test",
            context_data={},
            on_commit=lambda _rows: None,
        )

    def __call__(self, name: str, *args, settings: bool = False, now: bool = True, **kwargs):
        uow = self.uow()
        fn = getattr(usecases, name)
        if settings:
            args = (self.settings, *args)
        if now:
            kwargs.setdefault("now", self.now)
        try:
            result = fn(uow, *args, **kwargs)
            uow.commit()
            return result
        except Exception:
            uow.rollback()
            raise
        finally:
            uow.session.close()

    def events(self, event_type: str | None = None) -> list[dict]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(OUTBOX.c.body).order_by(OUTBOX.c.seq)).scalars()
            bodies = [json.loads(b) for b in rows]
        return [b for b in bodies if event_type is None or b["type"] == event_type]

    def advance(self, **delta) -> datetime:
        from datetime import timedelta

        self.now = self.now + timedelta(**delta)
        return self.now


@pytest.fixture
def floor(db_url_factory):
    url = db_url_factory("queue")
    upgrade("queue", url)
    f = Floor(url, usecases.Settings(nik_hash_key="test-key", max_priority_streak=2))
    yield f
    f.engine.dispose()


VALID_NIK = "3171014506900003"  # DKI Jakarta, a woman born 5 June 1990
# the mall admin acts on every agency: tests whose subject is not the agency scope act as it
STAFF = {"role": "mall_admin", "agency_id": None, "key_id": "test-mall-admin"}
OTHER_NIK = "5171010101850001"


def setup_agency(floor: Floor, agency_code: str = "DUKCAPIL", **service) -> tuple[dict, dict]:
    agency = floor(
        "register_agency", {"code": agency_code, "name": f"Agency {agency_code}"}, now=False
    )
    svc = floor(
        "plug_service",
        agency["id"],
        {
            "code": service.pop("code", "KTP"),
            "name": "KTP-el",
            "fee_idr": 0,
            "sla_minutes": 60,
            "prefix": service.pop("prefix", "A"),
            **service,
        },
        now=False,
    )
    return agency, svc
