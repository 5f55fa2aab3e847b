"""The boards' live calls: every gateway replica hears every call.

The gateway stores nothing of these events (the queue owns the calls; a reconnecting board is
caught up from the display snapshot and the hub's buffer), so they arrive on an exclusive,
auto-deleted queue per process, not on the services' durable, retried, deduplicated handler
queues (``mpp_chassis.messaging.event_handler``).
"""

from __future__ import annotations

from nameko.events import BROADCAST, EventHandler

from mpp_contracts.envelope import read_envelope


class DisplayBroadcastHandler(EventHandler):
    """Every replica receives every event (exclusive, auto-delete queue per process); a
    malformed envelope is dropped, as a board cannot use it."""

    def __init__(self, source_service: str, event_type: str) -> None:
        super().__init__(
            source_service, event_type, handler_type=BROADCAST, reliable_delivery=False
        )

    def handle_message(self, body, message):
        try:
            envelope = read_envelope(body)
        except Exception:
            self.queue_consumer.ack_message(message)
            return
        super().handle_message(envelope, message)


broadcast_handler = DisplayBroadcastHandler.decorator
