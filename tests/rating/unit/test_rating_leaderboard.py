from datetime import date
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mpp_rating.domain.leaderboard import LeaderboardEntry, period_bounds, rank


def entry(
    agency_id: str,
    ikm: str | None,
    respondents: int = 400,
    population: int = 100_000,
    csat: str | None = "0.9000",
    name: str | None = None,
) -> LeaderboardEntry:
    return LeaderboardEntry(
        agency_id=agency_id,
        agency_name=name or agency_id.title(),
        converted_ikm=Decimal(ikm) if ikm is not None else None,
        respondents=respondents,
        population=population,
        csat=Decimal(csat) if csat is not None else None,
    )


def test_ranked_by_converted_ikm_with_grades() -> None:
    result = rank([entry("samsat", "77.10"), entry("dukcapil", "90.25"), entry("bpjs", "64.00")])
    assert [(r.rank, r.entry.agency_id, r.grade) for r in result] == [
        (1, "dukcapil", "A"),
        (2, "samsat", "B"),
        (3, "bpjs", "D"),
    ]
    assert result[0].grade_label == "Sangat Baik"


def test_non_representative_and_missing_ikm_are_listed_after_unranked() -> None:
    result = rank(
        [
            entry("pln", "99.00", respondents=79, population=100),  # needs 80
            entry("samsat", "80.00", respondents=80, population=100),
            entry("pdam", None),
            entry("bpn", "70.00"),
        ]
    )
    assert [(r.rank, r.entry.agency_id, r.representative) for r in result] == [
        (1, "samsat", True),
        (2, "bpn", True),
        (None, "pln", False),
        (None, "pdam", False),
    ]
    assert (result[3].grade, result[3].grade_label) == (None, None)


def test_ties_on_ikm_broken_by_respondents_then_csat_then_name() -> None:
    result = rank(
        [
            entry("b-low-csat", "85.00", respondents=500, csat="0.8000", name="Beta"),
            entry("z-more", "85.00", respondents=600, csat="0.5000", name="Zeta"),
            entry("a-high-csat", "85.00", respondents=500, csat="0.9000", name="Alpha"),
            entry("c-no-csat", "85.00", respondents=500, csat=None, name="Gamma"),
        ]
    )
    assert [r.entry.agency_id for r in result] == [
        "z-more",
        "a-high-csat",
        "b-low-csat",
        "c-no-csat",
    ]
    assert [r.rank for r in result] == [1, 2, 3, 4]


def test_full_ties_share_a_rank_and_name_only_orders_them() -> None:
    # Standard competition ranking: 1, 2, 2, 4.
    result = rank(
        [
            entry("kanim", "80.00"),
            entry("polri", "85.00", name="Polri"),
            entry("bank", "85.00", name="bank BRI"),
            entry("top", "95.00"),
        ]
    )
    assert [(r.rank, r.entry.agency_id) for r in result] == [
        (1, "top"),
        (2, "bank"),
        (2, "polri"),
        (4, "kanim"),
    ]


def test_ikm_compared_as_published_to_two_decimals() -> None:
    # 85.004 and 85.001 are both published as 85.00, so the tie-breaker decides.
    result = rank([entry("x", "85.004", respondents=400), entry("y", "85.001", respondents=500)])
    assert [(r.rank, r.entry.agency_id) for r in result] == [(1, "y"), (2, "x")]


def test_empty_leaderboard() -> None:
    assert rank([]) == []


@given(
    st.lists(
        st.builds(
            entry,
            agency_id=st.text(alphabet="abcdef", min_size=1, max_size=3),
            ikm=st.one_of(st.none(), st.decimals(min_value=25, max_value=100, places=2).map(str)),
            respondents=st.integers(min_value=0, max_value=500),
            population=st.integers(min_value=0, max_value=2000),
            csat=st.one_of(st.none(), st.sampled_from(["0.5000", "0.7500", "1.0000"])),
        ),
        max_size=20,
    )
)
def test_rank_properties(entries: list[LeaderboardEntry]) -> None:
    result = rank(entries)
    assert sorted(map(id, (r.entry for r in result))) == sorted(map(id, entries))

    ranked = [r for r in result if r.rank is not None]
    assert all(r.representative for r in ranked)
    assert result[: len(ranked)] == ranked  # ranked entries come first
    for position, r in enumerate(ranked, start=1):
        better = sum(1 for other in ranked if other.entry.converted_ikm > r.entry.converted_ikm)
        assert r.rank <= position
        assert r.rank >= better + 1
    ikms = [r.entry.converted_ikm for r in ranked]
    assert ikms == sorted(ikms, reverse=True)


@pytest.mark.parametrize(
    ("period", "today", "start", "end"),
    [
        ("day", date(2024, 2, 29), date(2024, 2, 29), date(2024, 2, 29)),
        ("week", date(2024, 2, 29), date(2024, 2, 26), date(2024, 3, 3)),  # Thursday
        ("week", date(2024, 2, 26), date(2024, 2, 26), date(2024, 3, 3)),  # Monday
        ("week", date(2024, 3, 3), date(2024, 2, 26), date(2024, 3, 3)),  # Sunday
        ("week", date(2024, 12, 31), date(2024, 12, 30), date(2025, 1, 5)),
        ("month", date(2024, 2, 10), date(2024, 2, 1), date(2024, 2, 29)),
        ("month", date(2023, 2, 10), date(2023, 2, 1), date(2023, 2, 28)),
        ("month", date(2024, 12, 31), date(2024, 12, 1), date(2024, 12, 31)),
        ("year", date(2024, 7, 1), date(2024, 1, 1), date(2024, 12, 31)),
        ("2023-11", date(2024, 7, 1), date(2023, 11, 1), date(2023, 11, 30)),
        ("2024-02", date(2024, 7, 1), date(2024, 2, 1), date(2024, 2, 29)),
    ],
)
def test_period_bounds(period: str, today: date, start: date, end: date) -> None:
    assert period_bounds(period, today) == (start, end)


@pytest.mark.parametrize("period", ["quarter", "2024-13", "2024-00", "2024-1", "24-01", ""])
def test_period_bounds_rejects_unknown_periods(period: str) -> None:
    with pytest.raises(ValueError):
        period_bounds(period, date(2024, 7, 1))
