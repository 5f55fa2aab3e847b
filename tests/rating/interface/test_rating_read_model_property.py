"""Property: the read model built by the submission's fold (one upsert of atomic increments in
the database) always equals a recomputation from the raw ratings, for every bucket it touched and
for any custom range of days merged from day buckets."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import create_engine, insert
from sqlalchemy.orm import sessionmaker
from sqlalchemy.pool import StaticPool

from mpp_rating import usecases
from mpp_rating.adapters.tables import metadata, ratings
from mpp_rating.domain.aggregates import bucket_keys, bucket_range, local_midnight
from mpp_rating.domain.ikm import ELEMENTS

SETTINGS = usecases.Settings(mall_timezone="Asia/Jayapura")  # WIT: UTC+9 moves local days
EPOCH = datetime(2026, 1, 26, tzinfo=UTC)  # a Monday; ratings spread over ~10 weeks


class Uow:
    def __init__(self, session) -> None:
        self.session = session

    def claim_event(self, event_id: str, handler: str) -> bool:
        return True


@pytest.fixture(scope="module")
def make_session():
    engine = create_engine(
        "sqlite://", connect_args={"check_same_thread": False}, poolclass=StaticPool
    )
    metadata.create_all(engine)
    yield sessionmaker(bind=engine)
    engine.dispose()


rating_strategy = st.fixed_dictionaries(
    {
        "agency_id": st.sampled_from(["ag-1", "ag-2"]),
        "service_id": st.sampled_from(["s-1", "s-2", "s-3"]),
        "counter_id": st.sampled_from([None, "c-1", "c-2"]),
        "officer_id": st.sampled_from([None, "o-1", "o-2"]),
        "stars": st.integers(1, 5),
        "answers": st.dictionaries(st.sampled_from(ELEMENTS), st.integers(1, 4)),
        "minutes": st.integers(0, 70 * 24 * 60),
    }
)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    drawn=st.lists(rating_strategy, min_size=1, max_size=30),
    range_days=st.tuples(st.integers(0, 70), st.integers(0, 70)),
)
def test_read_model_equals_recomputation(make_session, drawn, range_days):
    session = make_session()
    uow = Uow(session)
    try:
        folded = []
        for n, item in enumerate(drawn):
            payload = {
                "rating_id": f"r-{n}",
                "ticket_id": f"t-{n}",
                **{k: v for k, v in item.items() if k != "minutes"},
                "submitted_at": EPOCH + timedelta(minutes=item["minutes"]),
            }
            session.execute(
                insert(ratings).values(
                    id=payload["rating_id"],
                    **{k: v for k, v in payload.items() if k != "rating_id"},
                )
            )
            rating = usecases.rating_from_payload(payload)
            usecases.fold_rating(uow, SETTINGS, rating, f"e-{n}")
            folded.append(rating)

        for key in {k for rating in folded for k in bucket_keys(rating, SETTINGS.tz)}:
            start, end = bucket_range(key.period_kind, key.period_start, SETTINGS.tz)
            stored = usecases.read_buckets(
                uow, key.dimension, key.id, key.period_kind, key.period_start, key.period_start
            )
            assert stored == usecases.recompute_from_ratings(
                uow, SETTINGS, key.dimension, key.id, start, end
            ), key

        first_day = EPOCH.astimezone(SETTINGS.tz).date() + timedelta(days=min(range_days))
        last_day = EPOCH.astimezone(SETTINGS.tz).date() + timedelta(days=max(range_days))
        start = local_midnight(first_day, SETTINGS.tz)
        end = local_midnight(last_day + timedelta(days=1), SETTINGS.tz)
        for dimension, dimension_id in (("agency", "ag-1"), ("service", "s-2"), ("officer", "o-1")):
            merged = usecases.read_buckets(uow, dimension, dimension_id, "day", first_day, last_day)
            recomputed = usecases.recompute_from_ratings(
                uow, SETTINGS, dimension, dimension_id, start, end
            )
            assert merged == recomputed
            assert merged.ikm().converted == recomputed.ikm().converted
            assert (merged.csat, merged.average_stars) == (
                recomputed.csat,
                recomputed.average_stars,
            )
    finally:
        session.rollback()
        session.close()
