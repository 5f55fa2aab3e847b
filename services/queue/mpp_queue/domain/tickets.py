"""The ticket state machine.

One ticket is one citizen's place in one service line. Counters move it with a small set of actions;
every action not listed in ``LEGAL_STATES`` for the ticket's current status is refused, so two
officers racing on the same ticket (one completes, the other cancels) cannot both win: the service
re-reads the state under a lock and the loser gets ``InvalidTransition``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum
from types import MappingProxyType

from .numbering import require_aware


class TicketStatus(StrEnum):
    WAITING = "waiting"
    CALLED = "called"
    SERVING = "serving"
    DONE = "done"
    NO_SHOW = "no_show"
    CANCELLED = "cancelled"
    TRANSFERRED = "transferred"


class Action(StrEnum):
    CALL = "call"
    RECALL = "recall"
    START = "start"
    COMPLETE = "complete"
    NO_SHOW = "no_show"
    CANCEL = "cancel"
    TRANSFER = "transfer"


TERMINAL_STATES = frozenset(
    {TicketStatus.DONE, TicketStatus.NO_SHOW, TicketStatus.CANCELLED, TicketStatus.TRANSFERRED}
)

LEGAL_STATES = MappingProxyType(
    {
        Action.CALL: frozenset({TicketStatus.WAITING}),
        Action.RECALL: frozenset({TicketStatus.CALLED}),
        Action.START: frozenset({TicketStatus.CALLED}),
        Action.COMPLETE: frozenset({TicketStatus.SERVING}),
        Action.NO_SHOW: frozenset({TicketStatus.CALLED}),
        Action.CANCEL: frozenset({TicketStatus.WAITING, TicketStatus.CALLED}),
        Action.TRANSFER: frozenset({TicketStatus.CALLED, TicketStatus.SERVING}),
    }
)
"""For each action, the statuses it may be applied in."""

TARGET_STATE = MappingProxyType(
    {
        Action.CALL: TicketStatus.CALLED,
        Action.RECALL: TicketStatus.CALLED,
        Action.START: TicketStatus.SERVING,
        Action.COMPLETE: TicketStatus.DONE,
        Action.NO_SHOW: TicketStatus.NO_SHOW,
        Action.CANCEL: TicketStatus.CANCELLED,
        Action.TRANSFER: TicketStatus.TRANSFERRED,
    }
)


class InvalidTransition(ValueError):
    """``action`` is not allowed while the ticket is ``status``.

    ``reason`` is ``'not_allowed'`` (the status forbids the action) or ``'too_few_calls'`` (a
    no-show before the ticket was called often enough).
    """

    def __init__(self, action: str, status: str, reason: str = "not_allowed") -> None:
        self.action = str(action)
        self.status = str(status)
        self.reason = reason
        super().__init__(f"cannot {self.action} a {self.status} ticket ({reason})")


@dataclass(frozen=True)
class TicketState:
    """A ticket's lifecycle facts; immutable so every transition is a new value to persist.

    ``called_at`` is the *first* call (waiting time = issue to first call); ``last_called_at`` moves
    with every recall. ``ended_at`` is set by every action that ends the ticket, ``completed_at``
    only by ``complete``.
    """

    status: TicketStatus = TicketStatus.WAITING
    call_count: int = 0
    called_at: datetime | None = None
    last_called_at: datetime | None = None
    started_at: datetime | None = None
    completed_at: datetime | None = None
    ended_at: datetime | None = None
    counter_id: str | None = None

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL_STATES


def apply(
    state: TicketState,
    action: Action | str,
    now: datetime,
    *,
    no_show_after_calls: int = 3,
    counter_id: str | None = None,
) -> TicketState:
    """Return the state after ``action`` at ``now``, or raise ``InvalidTransition``.

    A no-show needs ``no_show_after_calls`` calls first, so a citizen who stepped away for a minute
    is called again before losing their place. ``counter_id``, when given with a call or recall,
    records which counter is calling; other actions keep the counter of the call.
    """
    require_aware(now, "now")
    action = Action(action)
    if state.status not in LEGAL_STATES[action]:
        raise InvalidTransition(action, state.status)
    if action is Action.NO_SHOW and state.call_count < no_show_after_calls:
        raise InvalidTransition(action, state.status, "too_few_calls")

    status = TARGET_STATE[action]
    if action is Action.CALL:
        return replace(
            state,
            status=status,
            call_count=1,
            called_at=now,
            last_called_at=now,
            counter_id=counter_id or state.counter_id,
        )
    if action is Action.RECALL:
        return replace(
            state,
            status=status,
            call_count=state.call_count + 1,
            last_called_at=now,
            counter_id=counter_id or state.counter_id,
        )
    if action is Action.START:
        return replace(state, status=status, started_at=now)
    if action is Action.COMPLETE:
        return replace(state, status=status, completed_at=now, ended_at=now)
    return replace(state, status=status, ended_at=now)


def transfer_queued_at(original_issued_at: datetime, now: datetime) -> datetime:
    """Where a transferred citizen stands in the target line: their ORIGINAL arrival time.

    They already waited once; putting them at the back would punish them for the mall's routing. The
    line is ordered by ``queued_at``, so returning the original issue time places them among those
    who arrived at the same time. An issue time in the future is a data error, not a rule to apply.
    """
    require_aware(original_issued_at, "original_issued_at")
    require_aware(now, "now")
    if original_issued_at > now:
        raise ValueError("original_issued_at is after now")
    return original_issued_at
