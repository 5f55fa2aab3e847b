"""A token works once, also when two submissions arrive at the same instant: two processes submit
the same tokens concurrently against one PostgreSQL database; each token yields one rating. The
same request twice at once (one request key: a gateway's retry racing its first attempt) gets one
rating, answered to both."""

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
from tests.rating.interface.conftest import completed_payload, not_required_payload

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
keyed = sys.argv[4:] == ["keyed"]
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
                     source="rating", mall="race", context_data={}, on_commit=lambda _rows: None)
    try:
        answer = usecases.submit_rating(
            uow, usecases.Settings(), {"token": token, "stars": 4},
            request_key=f"request-{token}"[:64] if keyed else None,
        )
        uow.commit()
        results.append(answer["id"] if keyed else "ok")
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
        on_commit=lambda _rows: None,
    )


def race(url: str, keyed: bool) -> tuple[list[list[str]], object]:
    """Issue TOKENS invitations, then submit each token from two processes at the same instant."""
    upgrade("rating", url)
    engine = make_engine(url)
    session = sessionmaker(bind=engine)()
    uow = unit_of_work(session)
    for n in range(TOKENS):
        usecases.on_ticket_completed(uow, usecases.Settings(), completed_payload(f"t-{n}", "ag-1"))
        usecases.on_payment_settled(
            uow, usecases.Settings(), not_required_payload(f"t-{n}", "ag-1")
        )
    uow.commit()
    tokens = list(session.execute(select(invitations.c.token).order_by("ticket_id")).scalars())
    session.close()

    start_at = time.time() + 2  # both processes start together after importing
    racers = [
        subprocess.Popen(
            [sys.executable, "-c", SUBMITTER, url, str(start_at), json.dumps(tokens)]
            + (["keyed"] if keyed else []),
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
    return outcomes, engine


def stored(engine) -> tuple[int, int]:
    """Ratings stored and rating_submitted events in the outbox."""
    outbox = metadata.tables["outbox"]
    with engine.connect() as conn:
        return (
            conn.execute(select(func.count()).select_from(ratings)).scalar_one(),
            conn.execute(
                select(func.count())
                .select_from(outbox)
                .where(outbox.c.event_type == "rating_submitted")
            ).scalar_one(),
        )


def test_same_token_submitted_twice_at_once_rates_once(pg_url_factory):
    outcomes, engine = race(pg_url_factory("mpp_rating_race"), keyed=False)
    for first, second in zip(*outcomes, strict=True):
        assert sorted([first, second]) == ["TOKEN_USED", "ok"]
    assert stored(engine) == (TOKENS, TOKENS)
    engine.dispose()


def test_the_same_request_twice_at_once_rates_once_and_both_get_the_rating(pg_url_factory):
    outcomes, engine = race(pg_url_factory("mpp_rating_race_keyed"), keyed=True)
    for first, second in zip(*outcomes, strict=True):
        assert first == second and first not in ("TOKEN_USED", "ok")  # one rating id, twice
    assert stored(engine) == (TOKENS, TOKENS)
    engine.dispose()
