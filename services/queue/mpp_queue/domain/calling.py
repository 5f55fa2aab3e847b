"""Call-next fairness: which waiting ticket a counter calls next.

The rule (docs/queue-rules.md, "Calling"):

1. A checked-in booking whose slot has started goes first, earliest slot first: the citizen was
   promised that time.
2. Otherwise priority tickets (UU 25/2009 Pasal 29 perlakuan khusus) go before regular ones,
   but after ``max_priority_streak`` priority calls in a row one regular ticket is served, if
   one waits, so the regular line never starves.
3. Within a class, the longest waiting first (earliest ``queued_at``, ties by ``ticket_id``).

Booked calls leave the streak alone, a regular call resets it, a priority call increments it. The
result depends only on the candidates' values, never on their order in the input.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from .numbering import require_aware

PRIORITY_CATEGORIES = ("elderly", "disability", "pregnant", "nursing", "children")


@dataclass(frozen=True)
class Candidate:
    """A waiting ticket a counter may call.

    A booked ticket (``booked_slot_start`` set) is callable only once checked in and once its slot
    has started; a citizen who arrives late is re-issued as a walk-in (``booked_slot_start=None``).
    """

    ticket_id: str
    service_id: str
    queued_at: datetime
    priority: str | None = None
    booked_slot_start: datetime | None = None
    checked_in: bool = False

    def __post_init__(self) -> None:
        require_aware(self.queued_at, "queued_at")
        if self.booked_slot_start is not None:
            require_aware(self.booked_slot_start, "booked_slot_start")
        if self.priority is not None and self.priority not in PRIORITY_CATEGORIES:
            raise ValueError(f"unknown priority category {self.priority!r}")

    @property
    def is_booked(self) -> bool:
        return self.booked_slot_start is not None


@dataclass(frozen=True)
class Choice:
    """The ticket to call and the priority streak to store for the next call."""

    candidate: Candidate
    priority_streak: int


def _line_key(c: Candidate) -> tuple[datetime, str]:
    return (c.queued_at, c.ticket_id)


def _booking_key(c: Candidate) -> tuple[datetime, datetime, str]:
    assert c.booked_slot_start is not None
    return (c.booked_slot_start, c.queued_at, c.ticket_id)


def _split(
    candidates: Iterable[Candidate], now: datetime
) -> tuple[list[Candidate], list[Candidate], list[Candidate]]:
    """Sort the callable candidates into (booked, priority, regular), each in calling order."""
    booked, priority, regular = [], [], []
    for c in candidates:
        if c.is_booked:
            assert c.booked_slot_start is not None
            if c.checked_in and c.booked_slot_start <= now:
                booked.append(c)
        elif c.priority is not None:
            priority.append(c)
        else:
            regular.append(c)
    booked.sort(key=_booking_key)
    priority.sort(key=_line_key)
    regular.sort(key=_line_key)
    return booked, priority, regular


def _check_streak(priority_streak: int, max_priority_streak: int) -> None:
    if max_priority_streak < 1:
        raise ValueError("max_priority_streak must be at least 1")
    if priority_streak < 0:
        raise ValueError("priority_streak must not be negative")


def choose_next(
    candidates: Iterable[Candidate],
    *,
    now: datetime,
    priority_streak: int,
    max_priority_streak: int,
) -> Choice | None:
    """The next ticket to call under the documented rule, or ``None`` when nobody is callable."""
    require_aware(now, "now")
    _check_streak(priority_streak, max_priority_streak)
    booked, priority, regular = _split(candidates, now)
    if booked:
        return Choice(booked[0], priority_streak)
    if regular and (not priority or priority_streak >= max_priority_streak):
        return Choice(regular[0], 0)
    if priority:
        return Choice(priority[0], priority_streak + 1)
    return None


def call_order(
    candidates: Iterable[Candidate],
    *,
    now: datetime,
    priority_streak: int,
    max_priority_streak: int,
) -> list[Candidate]:
    """Every callable candidate in the order repeated ``choose_next`` calls would pick them.

    Assumes nobody new arrives and the clock stands still at ``now``: it is what a virtual ticket
    shows as "your position". Linear after sorting, so it is cheap for a whole line.
    """
    require_aware(now, "now")
    _check_streak(priority_streak, max_priority_streak)
    booked, priority, regular = _split(candidates, now)
    order: list[Candidate] = list(booked)
    p = r = 0
    streak = priority_streak
    while p < len(priority) or r < len(regular):
        if r < len(regular) and (p == len(priority) or streak >= max_priority_streak):
            order.append(regular[r])
            r += 1
            streak = 0
        else:
            order.append(priority[p])
            p += 1
            streak += 1
    return order


def position_of(
    ticket_id: str,
    candidates: Sequence[Candidate],
    *,
    now: datetime,
    priority_streak: int,
    max_priority_streak: int,
) -> int | None:
    """Tickets to be called before ``ticket_id`` (0 = next); ``None`` if it is not callable."""
    order = call_order(
        candidates,
        now=now,
        priority_streak=priority_streak,
        max_priority_streak=max_priority_streak,
    )
    for index, c in enumerate(order):
        if c.ticket_id == ticket_id:
            return index
    return None


def position_from_counts(
    *,
    priority: bool,
    booked_ready: int,
    same_class_ahead: int,
    other_class_waiting: int,
    priority_streak: int,
    max_priority_streak: int,
) -> int:
    """What :func:`position_of` answers for a walk-in ticket, from counts alone.

    A line of thousands then costs a few indexed ``COUNT``\\ s instead of loading every ticket.
    ``same_class_ahead``: tickets of the ticket's own class (priority or regular) that the line
    orders before it; ``other_class_waiting``: every waiting ticket of the other class;
    ``booked_ready``: checked-in booked tickets whose slot has started (they go first).

    - A regular ticket waits for the regulars ahead, and for the priority tickets called before
      each of those regulars and before itself: up to ``max - streak`` before the first regular,
      then ``max`` before each further one.
    - A priority ticket waits for the priority tickets ahead, and for one regular each time the
      streak reaches ``max`` before its turn.
    """
    _check_streak(priority_streak, max_priority_streak)
    limit, streak = max_priority_streak, priority_streak
    if priority:
        if streak >= limit:
            regulars_before = 1 + same_class_ahead // limit
        else:
            regulars_before = (same_class_ahead + streak) // limit
        return booked_ready + same_class_ahead + min(other_class_waiting, regulars_before)
    priority_before = max(0, limit - streak) + limit * same_class_ahead
    return booked_ready + same_class_ahead + min(other_class_waiting, priority_before)
