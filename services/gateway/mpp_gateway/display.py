"""Live display boards: Server-Sent Events fed by a broadcast event handler.

Every gateway replica binds its own exclusive queue to the queue service's ``ticket_called`` and
``ticket_recalled`` events (``broadcast_handler``), so a board connected to any replica sees
every call. Each process keeps the last ``DISPLAY_BUFFER_SIZE`` calls in a ring buffer so a
client reconnecting with ``Last-Event-ID`` (the event's envelope id) gets what it missed; an id no
longer in the buffer gets a ``resync`` event (fetch ``GET /v1/display`` again).

The stream body is a generator: nameko's web server iterates it on the connection's own
greenthread after the handler returned, so open streams hold no worker slot.
"""

from __future__ import annotations

import json
from collections import deque

import eventlet
from eventlet.queue import Empty, LightQueue
from nameko.extensions import DependencyProvider

from mpp_gateway import metrics

EVENT_TYPES = ("ticket_called", "ticket_recalled")
_CLOSE = object()


def frame(envelope: dict) -> str:
    data = {
        "id": envelope["id"],
        "type": envelope["type"],
        "occurred_at": envelope["occurred_at"],
        "correlation_id": envelope["correlation_id"],
        **envelope["payload"],
    }
    text = json.dumps(data, default=_jsonable, separators=(",", ":"))
    return f"id: {envelope['id']}\nevent: {envelope['type']}\ndata: {text}\n\n"


def _jsonable(value):
    """Loaded envelopes carry datetimes (and maybe UUIDs): send them as ISO-8601 strings."""
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


class Hub:
    """Fan-out of display events to this process's open streams."""

    def __init__(self, buffer_size: int, heartbeat: float) -> None:
        self.buffer: deque[dict] = deque(maxlen=buffer_size)
        self.heartbeat = heartbeat
        self.subscribers: set[LightQueue] = set()

    def publish(self, envelope: dict) -> None:
        if any(e["id"] == envelope["id"] for e in self.buffer):
            return  # a redelivered event is shown once
        self.buffer.append(envelope)
        for queue in list(self.subscribers):
            queue.put(envelope)

    def close_all(self) -> None:
        for queue in list(self.subscribers):
            queue.put(_CLOSE)

    def missed_since(self, last_id: str | None) -> list[dict] | None:
        """Buffered events after ``last_id``; None if that id is no longer known."""
        if not last_id:
            return []
        events = list(self.buffer)
        for index, envelope in enumerate(events):
            if envelope["id"] == last_id:
                return events[index + 1 :]
        return None

    def stream(self, agency_id: str | None, last_id: str | None):
        """The SSE body: backlog (or ``resync``), then live events and heartbeats."""
        queue: LightQueue = LightQueue()
        self.subscribers.add(queue)  # before reading the backlog, so nothing falls between
        metrics.OPEN_STREAMS.inc()

        def wanted(envelope: dict) -> bool:
            return agency_id is None or envelope["payload"].get("agency_id") == agency_id

        try:
            yield f"retry: 2000\n: connected {agency_id or 'mall'}\n\n"
            missed = self.missed_since(last_id)
            seen = set()
            if missed is None:
                yield "event: resync\ndata: {}\n\n"
            else:
                for envelope in missed:
                    seen.add(envelope["id"])
                    if wanted(envelope):
                        yield frame(envelope)
            while True:
                try:
                    envelope = queue.get(timeout=self.heartbeat)
                except Empty:
                    yield ": heartbeat\n\n"
                    continue
                if envelope is _CLOSE:
                    return
                if envelope["id"] not in seen and wanted(envelope):
                    yield frame(envelope)
        finally:
            self.subscribers.discard(queue)
            metrics.OPEN_STREAMS.dec()


class DisplayHub(DependencyProvider):
    """One :class:`Hub` per gateway process; open streams end when the container stops."""

    def setup(self) -> None:
        config = self.container.config
        self.hub = Hub(
            int(config.get("DISPLAY_BUFFER_SIZE", 500)),
            float(config.get("DISPLAY_HEARTBEAT_SECONDS", 15)),
        )

    def stop(self) -> None:
        self.hub.close_all()
        eventlet.sleep(0)

    def kill(self) -> None:
        self.stop()

    def get_dependency(self, worker_ctx) -> Hub:
        return self.hub
