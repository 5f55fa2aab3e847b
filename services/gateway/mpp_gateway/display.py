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
from eventlet.queue import LightQueue
from nameko.extensions import DependencyProvider

from mpp_gateway import metrics

EVENT_TYPES = ("ticket_called", "ticket_recalled")
_CLOSE = object()
_HEARTBEAT = object()


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
    """Fan-out of display events to this process's open streams.

    An event is rendered once (not once per stream) and handed only to the streams that show it:
    its agency's boards and the mall-wide ones. With thousands of boards open, per-stream JSON
    encoding and waking streams that would drop the event were most of a call's cost.
    """

    def __init__(self, buffer_size: int, heartbeat: float) -> None:
        self.buffer: deque[tuple[dict, str]] = deque(maxlen=buffer_size)  # (envelope, frame)
        self.buffered_ids: set[str] = set()  # the buffer's event ids: a redelivery is one lookup
        self.heartbeat = heartbeat
        self.subscribers: dict[str | None, set[LightQueue]] = {}  # agency id (None: all) → queues
        self.running = True

    def beat(self) -> None:
        """Every ``heartbeat`` seconds, a comment on every open stream (keeps proxies from
        closing idle boards). One clock for all streams: a timeout per stream re-armed at each
        event cost a timer per stream per call."""
        while self.running:
            eventlet.sleep(self.heartbeat)
            for queues in list(self.subscribers.values()):
                for queue in list(queues):
                    queue.put(_HEARTBEAT)

    def publish(self, envelope: dict) -> None:
        if envelope["id"] in self.buffered_ids:
            return  # a redelivered event is shown once
        item = (envelope["id"], frame(envelope))
        if len(self.buffer) == self.buffer.maxlen:
            self.buffered_ids.discard(self.buffer[0][0]["id"])  # the one about to drop out
        self.buffer.append((envelope, item[1]))
        self.buffered_ids.add(envelope["id"])
        agency_id = envelope["payload"].get("agency_id")
        for key in {None, agency_id}:
            for queue in list(self.subscribers.get(key, ())):
                queue.put(item)

    def close_all(self) -> None:
        self.running = False
        for queues in list(self.subscribers.values()):
            for queue in list(queues):
                queue.put(_CLOSE)

    def missed_since(self, last_id: str | None) -> list[tuple[dict, str]] | None:
        """Buffered events after ``last_id``; None if that id is no longer known."""
        if not last_id:
            return []
        events = list(self.buffer)
        for index, (envelope, _) in enumerate(events):
            if envelope["id"] == last_id:
                return events[index + 1 :]
        return None

    def stream(self, agency_id: str | None, last_id: str | None):
        """The SSE body: backlog (or ``resync``), then live events and heartbeats."""
        queue: LightQueue = LightQueue()
        # subscribe before reading the backlog, so nothing falls between
        self.subscribers.setdefault(agency_id, set()).add(queue)
        metrics.OPEN_STREAMS.inc()
        try:
            yield f"retry: 2000\n: connected {agency_id or 'mall'}\n\n"
            missed = self.missed_since(last_id)
            seen = set()
            if missed is None:
                yield "event: resync\ndata: {}\n\n"
            else:
                for envelope, text in missed:
                    seen.add(envelope["id"])
                    if agency_id is None or envelope["payload"].get("agency_id") == agency_id:
                        yield text
            while True:
                item = queue.get()
                if item is _HEARTBEAT:
                    yield ": heartbeat\n\n"
                    continue
                if item is _CLOSE:
                    return
                event_id, text = item
                if event_id not in seen:
                    yield text
        finally:
            queues = self.subscribers.get(agency_id)
            if queues is not None:
                queues.discard(queue)
                if not queues:
                    self.subscribers.pop(agency_id, None)
            metrics.OPEN_STREAMS.dec()


class DisplayHub(DependencyProvider):
    """One :class:`Hub` per gateway process; open streams end when the container stops."""

    def setup(self) -> None:
        config = self.container.config
        self.hub = Hub(
            int(config.get("DISPLAY_BUFFER_SIZE", 500)),
            float(config.get("DISPLAY_HEARTBEAT_SECONDS", 15)),
        )

    def start(self) -> None:
        self.container.spawn_managed_thread(self.hub.beat)

    def stop(self) -> None:
        self.hub.close_all()
        eventlet.sleep(0)

    def kill(self) -> None:
        self.stop()

    def get_dependency(self, worker_ctx) -> Hub:
        return self.hub
