from datetime import UTC, datetime, timedelta

import pytest

from mpp_queue.domain.sla import sla_breached, sla_deadline

ISSUED = datetime(2026, 5, 11, 1, 0, tzinfo=UTC)
SECOND = timedelta(seconds=1)


def at(minutes: float) -> datetime:
    return ISSUED + timedelta(minutes=minutes)


@pytest.mark.parametrize(
    "started, completed, now, breached",
    [
        # waiting
        (None, None, at(60), False),  # exactly at the deadline: not yet
        (None, None, at(60) + SECOND, True),
        (None, None, at(10), False),
        # in service, started in time, still running past the deadline
        (at(50), None, at(60), False),
        (at(50), None, at(60) + SECOND, True),
        # finished: judged by the end time, whatever now is
        (at(50), at(60), at(600), False),
        (at(50), at(60) + SECOND, at(600), True),
        (at(5), at(20), at(20), False),
        # ended without service (no-show, cancel): end time passed as completed_at
        (None, at(61), at(600), True),
        (None, at(59), at(600), False),
    ],
)
def test_sla_breach(started, completed, now, breached):
    result = sla_breached(
        issued_at=ISSUED, started_at=started, completed_at=completed, sla_minutes=60, now=now
    )
    assert result is breached


def test_no_published_sla_never_breaches():
    assert not sla_breached(
        issued_at=ISSUED, started_at=None, completed_at=None, sla_minutes=None, now=at(10_000)
    )


def test_deadline():
    assert sla_deadline(ISSUED, 45) == at(45)


@pytest.mark.parametrize("minutes", [0, -5])
def test_non_positive_sla_is_a_configuration_error(minutes):
    with pytest.raises(ValueError):
        sla_breached(
            issued_at=ISSUED, started_at=None, completed_at=None, sla_minutes=minutes, now=at(1)
        )


@pytest.mark.parametrize(
    "started, completed",
    [
        (at(-1), None),  # started before issue
        (None, at(-1)),  # ended before issue
        (at(10), at(5)),  # completed before started
        (datetime(2026, 5, 11, 8, 5), None),  # naive
    ],
)
def test_inconsistent_records_are_refused(started, completed):
    with pytest.raises(ValueError):
        sla_breached(
            issued_at=ISSUED,
            started_at=started,
            completed_at=completed,
            sla_minutes=60,
            now=at(100),
        )


def test_naive_issue_or_now_is_refused():
    with pytest.raises(ValueError):
        sla_breached(
            issued_at=datetime(2026, 5, 11, 8),
            started_at=None,
            completed_at=None,
            sla_minutes=60,
            now=at(1),
        )
    with pytest.raises(ValueError):
        sla_breached(
            issued_at=ISSUED,
            started_at=None,
            completed_at=None,
            sla_minutes=60,
            now=datetime(2026, 5, 11, 8),
        )
