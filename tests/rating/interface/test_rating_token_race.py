"""A token works once, also when two submissions arrive at the same instant: two processes submit
the same tokens concurrently against one PostgreSQL database; each token yields one rating."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import sessionmaker

from mpp_chassis.db import UnitOfWork, make_engine
from mpp_chassis.migrate import upgrade
from mpp_rating import usecases
from mpp_rating.adapters.tables import invitations, metadata, ratings
from tests.rating.interface.conftest import completed_payload

pytestmark = [pytest.mark.integration, pytest.mark.postgres]

ROOT = Path(__file__).resolve().parents[3]
TOKENS = 30

SUBMITTER = """
import json, sys, time
from sqlalchemy.orm import sessionmaker
from mpp_chassis.db import UnitOfWork, make_engine
from mpp_contracts.errors import Conflict
from mpp_rating import usecases
from mpp_rating.adapters.tables import metadata

url, start_at, tokens = sys.argv[1], float(sys.argv[2]), json.loads(sys.argv[3])
engine = make_engine(url)
make_session = sessionmaker(bind=engine)
with engine.connect():
    pass  # connect before the start line, so both processes start equal
while time.time() < start_at:
    pass
results = []
for token in tokens:
    session = make_session()
    uow = UnitOfWork(session, metadata.tables["outbox"], metadata.tables["processed_events"],
                     source="rating", mall="race", context_data={}, on_commit=lambda: None)
    try:
        usecases.submit_rating(uow, usecases.Settings(), {"token": token, "stars": 4})
        uow.commit()
        results.append("ok")
    except Conflict as exc:
        session.rollback()
        results.append(exc.code)
    finally:
        session.close()
print(json.dumps(results))
"""


def unit_of_work(session) -> UnitOfWork:
    return UnitOfWork(
        session,
        metadata.tables["outbox"],
        metadata.tables["processed_events"],
        source="rating",
        mall="race",
        context_data={},
        on_commit=lambda: None,
    )


def test_same_token_submitted_twice_at_once_rates_once(pg_url_factory):
    url = pg_url_factory("mpp_rating_race")
    upgrade("rating", url)
    engine = make_engine(url)
    session = sessionmaker(bind=engine)()
    uow = unit_of_work(session)
    for n in range(TOKENS):
        usecases.on_ticket_completed(uow, usecases.Settings(), completed_payload(f"t-{n}", "ag-1"))
    uow.commit()
    tokens = list(session.execute(select(invitations.c.token).order_by("ticket_id")).scalars())
    session.close()

    start_at = time.time() + 2  # both processes start together after importing
    racers = [
        subprocess.Popen(
            [sys.executable, "-c", SUBMITTER, url, str(start_at), json.dumps(tokens)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outcomes = []
    for racer in racers:
        out, err = racer.communicate(timeout=120)
        assert racer.returncode == 0, err
        outcomes.append(json.loads(out))

    for first, second in zip(*outcomes, strict=True):
        assert sorted([first, second]) == ["TOKEN_USED", "ok"]
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(ratings)).scalar_one() == TOKENS
        submitted = conn.execute(
            select(func.count())
            .select_from(metadata.tables["outbox"])
            .where(metadata.tables["outbox"].c.event_type == "rating_submitted")
        ).scalar_one()
    assert submitted == TOKENS
    engine.dispose()
