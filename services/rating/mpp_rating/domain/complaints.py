"""Low ratings become complaints that run on SP4N-LAPOR deadlines.

A complaint is a small state machine: open → responded → resolved, or → escalated when the agency
lets a deadline pass. Deadlines are calendar days counted from the moment the complaint was opened
(see ``docs/rating-rules.md``): the mall is open on Saturdays and the rule must not depend on a
holiday calendar the platform does not own. A timer calls ``overdue`` and applies ``escalate``.

A dispute (sengketa) is not a status: it is the ``disputed`` flag, set by the ``dispute`` action
while the complaint is open or responded. A disputed complaint's resolution deadline is 14 days from
opening instead of 5; everything else is unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Literal

LOW_STARS = 2
FIRST_RESPONSE_DAYS = 3
RESOLUTION_DAYS = 5
DISPUTE_DAYS = 14

Deadline = Literal["first_response", "resolution", "dispute"]


class ComplaintStatus(StrEnum):
    OPEN = "open"
    RESPONDED = "responded"
    RESOLVED = "resolved"
    ESCALATED = "escalated"


class ComplaintAction(StrEnum):
    RESPOND = "respond"
    RESOLVE = "resolve"
    DISPUTE = "dispute"
    ESCALATE = "escalate"


TERMINAL = frozenset({ComplaintStatus.RESOLVED, ComplaintStatus.ESCALATED})


class InvalidTransition(Exception):
    """The action is not allowed in the complaint's current state (or not yet, for escalate)."""

    def __init__(self, status: ComplaintStatus, action: str, reason: str = "") -> None:
        self.status = status
        self.action = action
        detail = f": {reason}" if reason else ""
        super().__init__(f"cannot {action} a complaint that is {status}{detail}")


def should_open_complaint(stars: int, flagged_by_citizen: bool) -> bool:
    """1–2 stars, or a citizen who explicitly asks, opens a complaint; 3 stars alone does not."""
    return stars <= LOW_STARS or flagged_by_citizen


def first_response_due(opened_at: datetime) -> datetime:
    return opened_at + timedelta(days=FIRST_RESPONSE_DAYS)


def resolution_due(opened_at: datetime) -> datetime:
    return opened_at + timedelta(days=RESOLUTION_DAYS)


def dispute_due(opened_at: datetime) -> datetime:
    return opened_at + timedelta(days=DISPUTE_DAYS)


@dataclass(frozen=True)
class ComplaintState:
    """A complaint's lifecycle facts; ``escalated_for`` names the deadline that was missed."""

    opened_at: datetime
    status: ComplaintStatus = ComplaintStatus.OPEN
    disputed: bool = False
    responded_at: datetime | None = None
    resolved_at: datetime | None = None
    disputed_at: datetime | None = None
    escalated_at: datetime | None = None
    escalated_for: Deadline | None = None

    @property
    def closing_due(self) -> datetime:
        """The deadline for resolving: 5 days, or 14 once disputed."""
        if self.disputed:
            return dispute_due(self.opened_at)
        return resolution_due(self.opened_at)


def open_complaint(opened_at: datetime) -> ComplaintState:
    """A new complaint; deadlines run from ``opened_at``, which must be an aware instant."""
    _require_aware(opened_at)
    return ComplaintState(opened_at=opened_at)


def overdue(state: ComplaintState, now: datetime) -> Deadline | None:
    """The earliest deadline passed at ``now`` (strictly after the due instant), or None.

    A deadline is met up to and including its due instant. Terminal complaints are never overdue;
    a responded complaint is only held to its resolution (or dispute) deadline.
    """
    _require_aware(now)
    if state.status in TERMINAL:
        return None
    if state.status is ComplaintStatus.OPEN and now > first_response_due(state.opened_at):
        return "first_response"
    if now > state.closing_due:
        return "dispute" if state.disputed else "resolution"
    return None


def apply(state: ComplaintState, action: ComplaintAction | str, now: datetime) -> ComplaintState:
    """The state after ``action`` at ``now``; raises ``InvalidTransition`` when not allowed.

    respond: open → responded. resolve: responded → resolved (an agency responds first, which may be
    the same minute). dispute: open or responded, once. escalate: open or responded, only when
    ``overdue`` reports a missed deadline, so a timer firing twice or early cannot escalate wrongly.
    """
    _require_aware(now)
    try:
        action = ComplaintAction(action)
    except ValueError:
        raise InvalidTransition(state.status, str(action), "unknown action") from None
    if state.status in TERMINAL:
        raise InvalidTransition(state.status, action)

    if action is ComplaintAction.RESPOND:
        if state.status is not ComplaintStatus.OPEN:
            raise InvalidTransition(state.status, action)
        return replace(state, status=ComplaintStatus.RESPONDED, responded_at=now)
    if action is ComplaintAction.RESOLVE:
        if state.status is not ComplaintStatus.RESPONDED:
            raise InvalidTransition(state.status, action, "respond first")
        return replace(state, status=ComplaintStatus.RESOLVED, resolved_at=now)
    if action is ComplaintAction.DISPUTE:
        if state.disputed:
            raise InvalidTransition(state.status, action, "already disputed")
        return replace(state, disputed=True, disputed_at=now)
    missed = overdue(state, now)
    if missed is None:
        raise InvalidTransition(state.status, action, "no deadline has passed")
    return replace(state, status=ComplaintStatus.ESCALATED, escalated_at=now, escalated_for=missed)


def _require_aware(moment: datetime) -> None:
    if moment.utcoffset() is None:
        raise ValueError("complaint times must be timezone-aware")
