"""The correlation id of the work in hand, for logs and for the events that work causes.

nameko propagates ``context_data`` through RPC calls and event headers (``nameko.<key>``); a
contextvar makes the id visible to loggers without passing it around (eventlet greenthreads each
have their own context).
"""

from __future__ import annotations

import contextvars
import uuid

CORRELATION_KEY = "correlation_id"

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
