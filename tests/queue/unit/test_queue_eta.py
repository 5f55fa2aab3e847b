import math
import random
import statistics

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mpp_queue.domain.eta import RECENT_SAMPLE_SIZE, estimate_wait_minutes, typical_service_seconds


@pytest.mark.parametrize(
    "position, recent, counters, expected",
    [
        (0, [300], 1, 3),  # half of a 5-minute service: 2.5 -> 3
        (1, [300], 1, 8),  # 1.5 * 5 = 7.5 -> 8
        (4, [300], 3, 8),  # 4.5 * 300 / 3 = 450 s = 7.5 min -> 8
        (5, [240, 360, 300], 2, 14),  # median 300: 5.5 * 300 / 2 = 825 s = 13.75 -> 14
        (3, [120, 120, 3600], 1, 7),  # one forgotten ticket does not move the median
        (1, [], 1, 8),  # no history: default 300 s
        (0, [36], 1, 1),  # 18 s still shows one minute, never zero for a waiting ticket
    ],
)
def test_formula(position, recent, counters, expected):
    assert estimate_wait_minutes(position, recent, counters) == expected


def test_exact_minutes_are_not_rounded_up_by_float_noise():
    # 1.5 * 120 / 3 = 60 s exactly = 1 min; float arithmetic must not turn it into 2.
    assert estimate_wait_minutes(1, [120], 3) == 1
    assert estimate_wait_minutes(2, [72.0], 1) == 3  # 2.5 * 72 = 180 s


@pytest.mark.parametrize("counters", [0, -1])
def test_no_open_counter_gives_none(counters):
    assert estimate_wait_minutes(3, [300], counters) is None


def test_default_service_seconds_is_used_without_history():
    assert estimate_wait_minutes(1, [], 1, default_service_seconds=600) == 15


def test_only_the_most_recent_durations_count():
    old_slow = [3000.0] * 50
    recent_fast = [60.0] * RECENT_SAMPLE_SIZE
    assert typical_service_seconds(old_slow + recent_fast) == 60
    assert typical_service_seconds([60.0, 3000.0, 3000.0], sample_size=1) == 3000


def test_non_positive_durations_are_ignored():
    assert typical_service_seconds([0, -5, 200]) == 200
    assert typical_service_seconds([0, -5]) == 300


@pytest.mark.parametrize(
    "kwargs",
    [
        {"position": -1},
        {"default_service_seconds": 0},
        {"sample_size": 0},
    ],
)
def test_bad_arguments(kwargs):
    args = {"position": 1, "recent_service_seconds": [300], "open_counters": 1} | kwargs
    with pytest.raises(ValueError):
        estimate_wait_minutes(**args)


@given(
    position=st.integers(0, 200),
    recent=st.lists(st.floats(1, 3600), max_size=30),
    counters=st.integers(1, 10),
)
def test_estimate_grows_with_position_and_shrinks_with_counters(position, recent, counters):
    here = estimate_wait_minutes(position, recent, counters)
    assert here >= 1
    assert estimate_wait_minutes(position + 1, recent, counters) >= here
    assert estimate_wait_minutes(position, recent, counters + 1) <= here


def simulate_day(seed: int, counters: int, mean_gap_s: float, hours: float = 8):
    """First-come-first-served line with ``counters`` counters, random arrivals and durations.

    Each arrival is quoted an estimate from what the service would know at that instant (position,
    durations of services already finished, open counters); the result pairs the quote with the
    wait that actually followed, both in minutes.
    """
    rng = random.Random(seed)
    arrivals, t = [], 0.0
    while (t := t + rng.expovariate(1 / mean_gap_s)) < hours * 3600:
        arrivals.append(t)
    # Right-skewed durations around 5 minutes, like real counters (mean 300 s, median ~250 s).
    durations = [rng.lognormvariate(math.log(300) - 0.18, 0.6) for _ in arrivals]
    free_at = [0.0] * counters
    starts = []
    for arrival, duration in zip(arrivals, durations, strict=True):
        counter = min(range(counters), key=free_at.__getitem__)
        start = max(arrival, free_at[counter])
        free_at[counter] = start + duration
        starts.append(start)
    pairs = []
    for j, arrival in enumerate(arrivals):
        position = sum(1 for k in range(j) if starts[k] > arrival)
        finished = sorted(
            (starts[k] + durations[k], durations[k])
            for k in range(j)
            if starts[k] + durations[k] <= arrival
        )
        estimate = estimate_wait_minutes(position, [d for _, d in finished], counters)
        pairs.append((estimate, (starts[j] - arrival) / 60))
    return pairs


@pytest.mark.parametrize(
    "seed, counters, mean_gap_s", [(1, 3, 105), (4, 2, 160), (2, 5, 62), (7, 4, 80)]
)
def test_estimate_tracks_actual_waits_over_a_simulated_day(seed, counters, mean_gap_s):
    """Stated tolerance, over a busy 8-hour day (load about 90 %): the mean error (bias) is within
    20 % of the mean actual wait + 1 minute, the mean absolute error within 40 % + 1 minute."""
    pairs = simulate_day(seed, counters, mean_gap_s)
    assert len(pairs) > 150
    mean_actual = statistics.mean(actual for _, actual in pairs)
    assert mean_actual > 5  # a busy day, or the check says nothing
    bias = statistics.mean(est - actual for est, actual in pairs)
    mae = statistics.mean(abs(est - actual) for est, actual in pairs)
    assert abs(bias) <= 0.2 * mean_actual + 1
    assert mae <= 0.4 * mean_actual + 1
