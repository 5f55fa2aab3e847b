"""The correlation id of the work in hand, for logs and for the events that work causes.

nameko propagates ``context_data`` through RPC calls and event headers (``nameko.<key>``); a
contextvar makes the id visible to loggers without passing it around (eventlet greenthreads each
have their own context).
"""

from __future__ import annotations

import contextvars
import time
import uuid
from collections.abc import Callable

from mpp_contracts.errors import ServiceUnavailable

CORRELATION_KEY = "correlation_id"
# when the caller that sent this work stops waiting for it (epoch seconds, as ``time.time()``): set
# by a bounded RPC call (mpp_chassis.calls) and carried on with the work's context, so a call
# made while serving it inherits the earliest deadline (docs/decisions/0041)
DEADLINE_KEY = "deadline"

correlation_id: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "correlation_id", default=None
)
event_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("event_id", default=None)


def ensure_correlation(context_data: dict) -> str:
    """Return the worker's correlation id, creating one for work that starts here."""
    value = context_data.get(CORRELATION_KEY)
    if not value:
        value = str(uuid.uuid4())
        context_data[CORRELATION_KEY] = value
    return value


def past_deadline(context_data: dict) -> float | None:
    """How many seconds ago the work's caller stopped waiting, or None while it waits (or when
    the work has no caller bound in time: events, timers, an unbounded call)."""
    return seconds_late(context_data.get(DEADLINE_KEY))


def seconds_late(deadline) -> float | None:
    """How many seconds ago ``deadline`` (epoch seconds) passed; None before it, or when there
    is none (not a number: no header, or one sent by someone else)."""
    if not isinstance(deadline, (int, float)):
        return None
    late = time.time() - deadline
    return late if late > 0 else None


def refuse_past_deadline(context_data: dict, undo: Callable[[], None]) -> None:
    """Before a commit: once the work's caller was answered 503 (its bound ran out while this
    worker waited or worked), ``undo`` the work and raise ``DEADLINE_EXCEEDED`` instead. A
    commit now would act where nobody is told, and a retry of the same press, already answered,
    would not replay it."""
    late = past_deadline(context_data)
    if late is not None:
        undo()
        raise ServiceUnavailable(
            "DEADLINE_EXCEEDED",
            "the caller stopped waiting before this could be committed; nothing was done",
            {"late_seconds": round(late, 3), "retry_after": 1},
        )
