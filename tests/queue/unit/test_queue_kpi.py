from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mpp_queue.domain.kpi import (
    Hour,
    Kpi,
    Stats,
    TicketRecord,
    by_hour,
    compute_kpis,
    nearest_rank,
    summarize,
)
from mpp_queue.domain.tickets import TicketStatus

T0 = datetime(2026, 5, 11, 1, 0, tzinfo=UTC)
DAY = date(2026, 5, 11)


def record(
    wait_s: float | None = 60,
    serve_s: float | None = 300,
    status: str = "done",
    agency: str = "dukcapil",
    service: str = "ktp",
    counter: str | None = "c1",
    day: date = DAY,
    **extra,
) -> TicketRecord:
    called = T0 + timedelta(seconds=wait_s) if wait_s is not None else None
    started = called if serve_s is not None else None
    completed = started + timedelta(seconds=serve_s) if serve_s is not None else None
    return TicketRecord(
        agency_id=agency,
        service_id=service,
        counter_id=counter,
        day=day,
        issued_at=T0,
        called_at=called,
        started_at=started,
        completed_at=completed,
        status=TicketStatus(status),
        **extra,
    )


@pytest.mark.parametrize(
    "values, percent, expected",
    [
        ([1], 50, 1),
        ([1], 90, 1),
        ([1, 2], 50, 1),  # rank ceil(1.0) = 1: the lower middle, an observed value
        ([1, 2, 3], 50, 2),
        ([1, 2, 3, 4], 50, 2),
        (list(range(1, 11)), 90, 9),  # rank 9
        (list(range(1, 12)), 90, 10),  # rank ceil(9.9) = 10
        (list(range(1, 101)), 90, 90),
        (list(range(1, 6)), 100, 5),
    ],
)
def test_nearest_rank(values, percent, expected):
    assert nearest_rank(values, percent) == expected


@pytest.mark.parametrize("values, percent", [([], 50), ([1], 0), ([1], 101)])
def test_nearest_rank_rejects_bad_input(values, percent):
    with pytest.raises(ValueError):
        nearest_rank(values, percent)


@given(st.lists(st.floats(0, 1e6), min_size=1, max_size=60))
def test_summary_figures_are_observed_values_in_order(values):
    stats = summarize(values)
    assert stats.count == len(values)
    assert stats.median in values and stats.p90 in values
    assert min(values) <= stats.median <= stats.p90 <= max(values)
    # nearest rank: at least p% of the sample is <= the figure
    assert sum(v <= stats.p90 for v in values) >= 0.9 * len(values)


def test_summary_of_nothing():
    assert summarize([]) == Stats(count=0, mean=None, median=None, p90=None)


def test_kpis_for_one_agency():
    records = [
        record(wait_s=60, serve_s=300),
        record(wait_s=120, serve_s=600),
        record(wait_s=600, serve_s=None, status="no_show"),
        record(wait_s=None, serve_s=None, status="cancelled", counter=None),
        record(wait_s=30, serve_s=None, status="transferred", transferred=True),
        record(wait_s=90, serve_s=120, sla_breached=True),
    ]
    kpi = compute_kpis(records)[("dukcapil",)]
    assert kpi.tickets == 6
    assert kpi.waiting == Stats(count=5, mean=180.0, median=90.0, p90=600.0)
    assert kpi.serving == Stats(count=3, mean=340.0, median=300.0, p90=600.0)
    assert (kpi.served, kpi.no_shows, kpi.transfers, kpi.cancelled, kpi.sla_breaches) == (
        3,
        1,
        1,
        1,
        1,
    )


def test_transfer_counted_from_the_flag_or_the_status():
    records = [
        record(status="transferred"),
        record(status="done", transferred=True),
        record(status="done"),
    ]
    assert compute_kpis(records)[("dukcapil",)].transfers == 2


def test_negative_durations_are_left_out():
    kpi = compute_kpis([record(wait_s=-5), record(wait_s=10)], group_by=())[()]
    assert kpi.waiting.count == 1 and kpi.waiting.mean == 10


@pytest.mark.parametrize(
    "group_by, expected_keys",
    [
        ((), {()}),
        (("agency_id",), {("dukcapil",), ("imigrasi",)}),
        (("service_id",), {("ktp",), ("kk",), ("paspor",)}),
        (
            ("agency_id", "service_id"),
            {("dukcapil", "ktp"), ("dukcapil", "kk"), ("imigrasi", "paspor")},
        ),
        (("counter_id",), {("c1",), ("c2",), (None,)}),
        (("day",), {(DAY,), (DAY + timedelta(days=1),)}),
        (("day", "counter_id"), {(DAY, "c1"), (DAY, "c2"), (DAY + timedelta(days=1), None)}),
    ],
)
def test_group_by_any_subset(group_by, expected_keys):
    records = [
        record(service="ktp", counter="c1"),
        record(service="kk", counter="c2"),
        record(agency="imigrasi", service="paspor", counter="c1"),
        record(
            counter=None, status="cancelled", wait_s=None, serve_s=None, day=DAY + timedelta(days=1)
        ),
    ]
    result = compute_kpis(records, group_by=group_by)
    assert set(result) == expected_keys
    assert sum(k.tickets for k in result.values()) == len(records)


def test_groups_split_the_figures():
    records = [
        record(agency="a", wait_s=10),
        record(agency="b", wait_s=20),
        record(agency="b", wait_s=40),
    ]
    result = compute_kpis(records)
    assert result[("a",)].waiting.mean == 10
    assert result[("b",)].waiting.mean == 30
    assert result[("b",)].waiting.count == 2


@pytest.mark.parametrize("group_by", [("officer_id",), ("agency_id", "agency_id"), ("issued_at",)])
def test_unknown_or_repeated_group_fields_are_refused(group_by):
    with pytest.raises(ValueError):
        compute_kpis([record()], group_by=group_by)


def test_no_records_no_groups():
    assert compute_kpis([]) == {}


def test_empty_group_default_kpi():
    assert Kpi().waiting == Stats()


def at(local_hour: int, minute: int = 0, day: date = DAY) -> datetime:
    """An instant at a local (WIB, +7) hour of ``day``."""
    return datetime(day.year, day.month, day.day, local_hour, minute, tzinfo=UTC) - timedelta(
        hours=7
    )


def hourly(issued: datetime, called=None, completed=None, status="done") -> TicketRecord:
    return TicketRecord(
        agency_id="dukcapil",
        service_id="ktp",
        counter_id="c1",
        day=DAY,
        issued_at=issued,
        called_at=called,
        started_at=called,
        completed_at=completed,
        status=TicketStatus(status),
    )


def test_by_hour_counts_arrivals_services_and_waits_in_local_hours():
    records = [
        # arrived 08:10, called 08:40, done 09:05: taken at 8, served at 9, a 30-min wait at 8
        hourly(at(8, 10), at(8, 40), at(9, 5)),
        # arrived 08:50, called 09:50 (a 60-min wait, counted at 8, the hour of arrival)
        hourly(at(8, 50), at(9, 50), at(9, 59)),
        hourly(at(9, 0), None, None, status="waiting"),
        hourly(at(9, 1), at(9, 2), None, status="no_show"),
    ]
    hours = by_hour(records, "Asia/Jakarta")
    assert [h.hour for h in hours] == list(range(24))  # every hour, empty ones too
    assert hours[8] == Hour(8, taken=2, served=0, waiting=summarize([1800, 3600]))
    assert (hours[9].taken, hours[9].served, hours[9].waiting.count) == (2, 2, 1)
    assert all(h.taken == h.served == 0 for h in hours if h.hour not in (8, 9))
    assert sum(h.taken for h in hours) == len(records)


def test_by_hour_uses_the_mall_zone_and_its_day():
    # 08:00 WIB is 09:00 WITA: the same instant lands in the zone's own hour
    record = hourly(at(8), at(8, 5), at(8, 20))
    assert by_hour([record], "Asia/Makassar")[9].taken == 1
    # done after local midnight (a day closed late): not served on this day's chart
    late = hourly(at(23, 30), at(23, 40), at(23, 50) + timedelta(minutes=30))
    assert sum(h.served for h in by_hour([late], "Asia/Jakarta")) == 0
    naive = hourly(datetime(2026, 5, 11, 8, 0))
    with pytest.raises(ValueError):
        by_hour([naive], "Asia/Jakarta")
