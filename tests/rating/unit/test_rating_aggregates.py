from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mpp_rating.domain.aggregates import (
    Aggregate,
    BucketKey,
    Rating,
    bucket_keys,
    bucket_range,
    local_midnight,
    recompute,
)
from mpp_rating.domain.ikm import ELEMENTS

WIB = ZoneInfo("Asia/Jakarta")
WITA = ZoneInfo("Asia/Makassar")
WIT = ZoneInfo("Asia/Jayapura")


def make_rating(
    stars: int = 5,
    answers: dict[str, int] | None = None,
    submitted_at: datetime = datetime(2024, 3, 15, 3, 0, tzinfo=UTC),
    *,
    rating_id: str = "r1",
    agency_id: str = "dukcapil",
    service_id: str = "ktp",
    counter_id: str | None = "loket-1",
    officer_id: str | None = "officer-1",
) -> Rating:
    return Rating(
        rating_id=rating_id,
        agency_id=agency_id,
        service_id=service_id,
        counter_id=counter_id,
        officer_id=officer_id,
        stars=stars,
        answers=answers if answers is not None else {},
        submitted_at=submitted_at,
    )


def test_empty_aggregate_has_no_averages() -> None:
    aggregate = Aggregate()
    assert aggregate.average_stars is None
    assert aggregate.csat is None
    assert aggregate.ikm().converted is None


def test_add_keeps_sums_and_counts() -> None:
    aggregate = Aggregate()
    aggregate.add(make_rating(5, {"U1": 4, "U2": 3}))
    aggregate.add(make_rating(4, {"U1": 2}))
    aggregate.add(make_rating(2, {}))

    assert (aggregate.count, aggregate.stars_sum, aggregate.stars_4_5) == (3, 11, 2)
    assert aggregate.element_sums["U1"] == 6
    assert aggregate.element_counts["U1"] == 2
    assert aggregate.element_counts["U2"] == 1
    assert aggregate.element_counts["U9"] == 0
    # 11 / 3 = 3.666… → 3.67; CSAT 2 / 3 = 0.6666… → 0.6667
    assert aggregate.average_stars == Decimal("3.67")
    assert aggregate.csat == Decimal("0.6667")


def test_ikm_of_an_aggregate_uses_per_element_counts() -> None:
    # Two respondents answer everything with 4 and 2 → every NRR 3 → IKM 3 → 75.00 (C);
    # a third answers only U1 with 4 → U1 NRR (4+2+4)/3 = 3.333…, Σ NRR = 27.333…,
    # IKM = 3.037… → converted 75.925… → 75.93 (C).
    aggregate = Aggregate.of(
        [
            make_rating(5, dict.fromkeys(ELEMENTS, 4)),
            make_rating(2, dict.fromkeys(ELEMENTS, 2)),
        ]
    )
    assert aggregate.ikm().converted == Decimal("75.00")
    aggregate.add(make_rating(4, {"U1": 4}))
    result = aggregate.ikm()
    assert result.converted == Decimal("75.93")
    assert result.grade == "C"
    assert aggregate.ikm(weight="regulation").converted == Decimal("75.85")  # 75.925 × 0.999


def test_merged_equals_folding_both_and_leaves_operands_unchanged() -> None:
    first = Aggregate.of([make_rating(5, {"U1": 4}), make_rating(1, {"U9": 1})])
    second = Aggregate.of([make_rating(4, {"U1": 3, "U3": 2})])
    before = Aggregate.of([make_rating(5, {"U1": 4}), make_rating(1, {"U9": 1})])

    merged = first.merged(second)

    assert merged == Aggregate.of(
        [make_rating(5, {"U1": 4}), make_rating(1, {"U9": 1}), make_rating(4, {"U1": 3, "U3": 2})]
    )
    assert first == before
    assert merged.merged(Aggregate()) == merged


@pytest.mark.parametrize(
    "kwargs",
    [
        {"stars": 0},
        {"stars": 6},
        {"stars": True},
        {"answers": {"U10": 3}},
        {"answers": {"U1": 5}},
        {"answers": {"U1": 0}},
        {"submitted_at": datetime(2024, 3, 15, 10, 0)},
    ],
)
def test_rating_rejects_broken_invariants(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        make_rating(**kwargs)


def test_rating_answers_cannot_be_changed_after_creation() -> None:
    answers = {"U1": 4}
    rating = make_rating(answers=answers)
    answers["U1"] = 1
    assert rating.answers["U1"] == 4
    with pytest.raises(TypeError):
        rating.answers["U1"] = 1  # type: ignore[index]


def test_bucket_keys_cover_every_dimension_and_period_in_local_time() -> None:
    # 2024-03-31 16:30 UTC is Sunday 23:30 in WIB but Monday 2024-04-01 01:30 in WIT.
    rating = make_rating(submitted_at=datetime(2024, 3, 31, 16, 30, tzinfo=UTC))

    wib = bucket_keys(rating, WIB)
    assert len(wib) == 12
    assert BucketKey("agency", "dukcapil", "day", date(2024, 3, 31)) in wib
    assert BucketKey("service", "ktp", "week", date(2024, 3, 25)) in wib
    assert BucketKey("counter", "loket-1", "month", date(2024, 3, 1)) in wib
    assert BucketKey("officer", "officer-1", "day", date(2024, 3, 31)) in wib

    wit = bucket_keys(rating, WIT)
    assert BucketKey("agency", "dukcapil", "day", date(2024, 4, 1)) in wit
    assert BucketKey("agency", "dukcapil", "week", date(2024, 4, 1)) in wit
    assert BucketKey("agency", "dukcapil", "month", date(2024, 4, 1)) in wit


def test_bucket_keys_skip_dimensions_the_rating_has_no_id_for() -> None:
    rating = make_rating(counter_id=None, officer_id=None)
    keys = bucket_keys(rating, WIB)
    assert {key.dimension for key in keys} == {"agency", "service"}
    assert len(keys) == 6


@pytest.mark.parametrize(
    ("kind", "start", "end"),
    [
        ("day", date(2024, 2, 28), date(2024, 2, 29)),
        ("week", date(2024, 2, 26), date(2024, 3, 4)),
        ("month", date(2024, 2, 1), date(2024, 3, 1)),
        ("month", date(2024, 12, 1), date(2025, 1, 1)),
    ],
)
def test_bucket_range_is_half_open_from_local_midnight(kind: str, start: date, end: date) -> None:
    assert bucket_range(kind, start, WITA) == (
        local_midnight(start, WITA),
        local_midnight(end, WITA),
    )
    assert local_midnight(start, WITA).utcoffset() == timedelta(hours=8)


def test_recompute_filters_by_dimension_and_half_open_range() -> None:
    start = local_midnight(date(2024, 3, 15), WIB)
    end = local_midnight(date(2024, 3, 16), WIB)
    ratings = [
        make_rating(5, submitted_at=start, rating_id="at-start"),
        make_rating(1, submitted_at=end - timedelta(microseconds=1), rating_id="last"),
        make_rating(3, submitted_at=end, rating_id="at-end"),
        make_rating(4, submitted_at=start, rating_id="other", agency_id="imigrasi"),
    ]

    aggregate = recompute(ratings, "agency", "dukcapil", start, end)

    assert (aggregate.count, aggregate.stars_sum) == (2, 6)


def test_recompute_rejects_unknown_dimension_and_naive_bounds() -> None:
    start = datetime(2024, 3, 15, tzinfo=UTC)
    with pytest.raises(ValueError):
        recompute([], "kiosk", "k1", start, start + timedelta(days=1))  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        recompute([], "agency", "a", datetime(2024, 3, 15), datetime(2024, 3, 16))


EPOCH = datetime(2024, 1, 1, tzinfo=UTC)
SPAN_SECONDS = 75 * 24 * 3600

ratings_strategy = st.lists(
    st.builds(
        make_rating,
        stars=st.integers(min_value=1, max_value=5),
        answers=st.dictionaries(
            st.sampled_from(ELEMENTS), st.integers(min_value=1, max_value=4), max_size=9
        ),
        submitted_at=st.integers(min_value=0, max_value=SPAN_SECONDS).map(
            lambda seconds: EPOCH + timedelta(seconds=seconds)
        ),
        agency_id=st.sampled_from(["dukcapil", "imigrasi"]),
        service_id=st.sampled_from(["ktp", "kk", "paspor"]),
        counter_id=st.sampled_from(["loket-1", "loket-2", None]),
        officer_id=st.sampled_from(["o1", "o2", "o3", None]),
    ),
    max_size=60,
)


@settings(max_examples=60, deadline=None)
@given(ratings=ratings_strategy, tz=st.sampled_from([WIB, WITA, WIT, UTC]))
def test_incremental_buckets_equal_recomputation(ratings: list[Rating], tz: ZoneInfo) -> None:
    buckets: dict[BucketKey, Aggregate] = defaultdict(Aggregate)
    for rating in ratings:
        for key in bucket_keys(rating, tz):
            buckets[key].add(rating)

    for key, aggregate in buckets.items():
        start, end = bucket_range(key.period_kind, key.period_start, tz)
        assert aggregate == recompute(ratings, key.dimension, key.id, start, end)

    # Every rating lands in exactly one bucket per dimension it has and per period kind.
    for kind in ("day", "week", "month"):
        total = sum(
            a.count for k, a in buckets.items() if (k.dimension, k.period_kind) == ("agency", kind)
        )
        assert total == len(ratings)


@settings(max_examples=60, deadline=None)
@given(
    ratings=ratings_strategy,
    tz=st.sampled_from([WIB, WITA, WIT]),
    first=st.integers(min_value=-2, max_value=80),
    length=st.integers(min_value=0, max_value=40),
)
def test_merging_day_buckets_over_a_custom_range_equals_recomputation(
    ratings: list[Rating], tz: ZoneInfo, first: int, length: int
) -> None:
    days: dict[BucketKey, Aggregate] = defaultdict(Aggregate)
    for rating in ratings:
        for key in bucket_keys(rating, tz):
            if key.period_kind == "day":
                days[key].add(rating)
    range_start = date(2024, 1, 1) + timedelta(days=first)
    range_end = range_start + timedelta(days=length)  # inclusive

    for agency in ("dukcapil", "imigrasi"):
        merged = Aggregate()
        for key, aggregate in days.items():
            if key.dimension == "agency" and key.id == agency:
                if range_start <= key.period_start <= range_end:
                    merged = merged.merged(aggregate)
        expected = recompute(
            ratings,
            "agency",
            agency,
            local_midnight(range_start, tz),
            local_midnight(range_end + timedelta(days=1), tz),
        )
        assert merged == expected
        assert merged.ikm() == expected.ikm()
        assert merged.csat == expected.csat
