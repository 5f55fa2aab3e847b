"""The display hub shows a redelivered event once while it is in the replay buffer, and forgets
ids that left the buffer (the buffer bounds memory; the id set follows it)."""

from __future__ import annotations

from eventlet.queue import LightQueue

from mpp_gateway.display import Hub


def envelope(event_id: str, agency: str = "a1") -> dict:
    return {
        "id": event_id,
        "type": "ticket_called",
        "version": 1,
        "occurred_at": "2026-11-28T08:00:00+07:00",
        "correlation_id": "c1",
        "payload": {"agency_id": agency, "ticket_id": f"t-{event_id}", "number": "A-001"},
    }


def drain(queue: LightQueue) -> list[str]:
    got = []
    while not queue.empty():
        got.append(queue.get()[0])
    return got


def test_redeliveries_within_the_buffer_are_shown_once_and_old_ids_are_forgotten():
    hub = Hub(buffer_size=3, heartbeat=60)
    board = LightQueue()
    hub.subscribers["a1"] = {board}
    for event_id in ("e1", "e2", "e3", "e2", "e4"):
        hub.publish(envelope(event_id))
    assert drain(board) == ["e1", "e2", "e3", "e4"]
    assert [e["id"] for e, _ in hub.buffer] == ["e2", "e3", "e4"]
    assert hub.buffered_ids == {"e2", "e3", "e4"}
    hub.publish(envelope("e3"))  # still buffered: a redelivery
    hub.publish(envelope("e1"))  # left the buffer: no longer known, shown again
    assert drain(board) == ["e1"]
    assert hub.buffered_ids == {"e3", "e4", "e1"}
