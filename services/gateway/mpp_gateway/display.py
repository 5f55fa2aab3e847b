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
import logging
from collections import deque

import eventlet
import greenlet
from eventlet.hubs import get_hub
from nameko.extensions import DependencyProvider

from mpp_gateway import metrics

EVENT_TYPES = ("ticket_called", "ticket_recalled")
_CLOSE = object()
_HEARTBEAT = object()
_log = logging.getLogger(__name__)


class Inbox:
    """One open stream's items, and the stream's greenthread while it waits for one.

    The hub hands an item to thousands of inboxes at once (:func:`deliver`) and wakes the waiting
    streams with ONE scheduled call: an ``eventlet.queue.LightQueue`` per stream scheduled a
    timer per stream per item, a third of the gateway's CPU during calls with 5,000 boards open.
    """

    __slots__ = ("items", "parked", "woken")

    def __init__(self) -> None:
        self.items: deque = deque()
        self.parked: greenlet.greenlet | None = None  # the greenthread waiting in :meth:`get`
        self.woken = False  # a wake-up for it is scheduled already

    def get(self):
        while not self.items:
            self.parked = greenlet.getcurrent()
            try:
                get_hub().switch()  # until :func:`_resume` (or a kill) switches back here
            finally:
                self.parked = None
                self.woken = False
        return self.items.popleft()


def deliver(inboxes, item) -> None:
    """Append ``item`` to every inbox; wake the waiting ones together, once each."""
    woken = []
    for inbox in inboxes:
        inbox.items.append(item)
        if inbox.parked is not None and not inbox.woken:
            inbox.woken = True
            woken.append((inbox, inbox.parked))
    if woken:
        get_hub().schedule_call_global(0, _resume, woken)


def _resume(woken: list) -> None:
    """Runs on the event loop: each stream runs until it waits again (its socket, its inbox)."""
    for inbox, waiting in woken:
        if inbox.parked is waiting and not waiting.dead:  # still waiting in ``get``
            try:
                waiting.switch()
            except Exception:  # pragma: no cover - greenthreads keep their own errors
                _log.exception("display stream failed")


# What a board may show of a call. Nothing that opens a ticket (its id, its journey) leaves in a
# frame: a board stands in a public hall, and its key is no citizen's.
FRAME_FIELDS = (
    "number",
    "agency_id",
    "service_id",
    "service_code",
    "counter_id",
    "counter_name",
    "call_count",
    "called_at",
    "announcement",
    "spoken_announcement",
    "out_of_order",
)


def frame(envelope: dict) -> str:
    payload = envelope["payload"]
    data = {
        "id": envelope["id"],
        "type": envelope["type"],
        "occurred_at": envelope["occurred_at"],
        "correlation_id": envelope["correlation_id"],
        **{name: payload[name] for name in FRAME_FIELDS if name in payload},
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
        self.subscribers: dict[str | None, set[Inbox]] = {}  # agency id (None: all) → inboxes
        self.running = True

    def beat(self) -> None:
        """Every ``heartbeat`` seconds, a comment on every open stream (keeps proxies from
        closing idle boards). One clock for all streams: a timeout per stream re-armed at each
        event cost a timer per stream per call."""
        while self.running:
            eventlet.sleep(self.heartbeat)
            for inboxes in list(self.subscribers.values()):
                deliver(list(inboxes), _HEARTBEAT)

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
            deliver(list(self.subscribers.get(key, ())), item)

    def close_all(self) -> None:
        self.running = False
        for inboxes in list(self.subscribers.values()):
            deliver(list(inboxes), _CLOSE)

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
        inbox = Inbox()
        # subscribe before reading the backlog, so nothing falls between
        self.subscribers.setdefault(agency_id, set()).add(inbox)
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
                item = inbox.get()
                if item is _HEARTBEAT:
                    yield ": heartbeat\n\n"
                    continue
                if item is _CLOSE:
                    return
                event_id, text = item
                if event_id not in seen:
                    yield text
        finally:
            inboxes = self.subscribers.get(agency_id)
            if inboxes is not None:
                inboxes.discard(inbox)
                if not inboxes:
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
