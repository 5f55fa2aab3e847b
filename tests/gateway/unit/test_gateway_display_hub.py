"""The display hub shows a redelivered event once while it is in the replay buffer, and forgets
ids that left the buffer (the buffer bounds memory; the id set follows it). Inboxes: every
waiting stream gets every item, in order, woken once per batch of items, and a stream that ended
meanwhile is not woken."""

from __future__ import annotations

import eventlet

from mpp_gateway.display import Hub, Inbox, deliver


def envelope(event_id: str, agency: str = "a1") -> dict:
    return {
        "id": event_id,
        "type": "ticket_called",
        "version": 1,
        "occurred_at": "2026-11-28T08:00:00+07:00",
        "correlation_id": "c1",
        "payload": {"agency_id": agency, "ticket_id": f"t-{event_id}", "number": "A-001"},
    }


def drain(inbox: Inbox) -> list[str]:
    got = []
    while inbox.items:
        got.append(inbox.get()[0])
    return got


def test_redeliveries_within_the_buffer_are_shown_once_and_old_ids_are_forgotten():
    hub = Hub(buffer_size=3, heartbeat=60)
    board = Inbox()
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


def test_waiting_streams_each_get_every_item_in_order():
    inboxes = [Inbox() for _ in range(50)]
    received: dict[int, list] = {i: [] for i in range(50)}

    def stream(index: int) -> None:
        while True:
            item = inboxes[index].get()
            if item is None:
                return
            received[index].append(item)

    threads = [eventlet.spawn(stream, i) for i in range(50)]
    eventlet.sleep(0)  # every stream is now waiting in ``get``
    assert all(inbox.parked is not None for inbox in inboxes)
    deliver(inboxes, "a")
    deliver(inboxes, "b")  # before any stream ran: queued, not woken twice
    assert all(inbox.woken for inbox in inboxes)
    eventlet.sleep(0)
    deliver(inboxes, "c")
    deliver(inboxes, None)
    for thread in threads:
        thread.wait()
    assert all(got == ["a", "b", "c"] for got in received.values())


def test_a_stream_that_ended_before_its_wake_up_is_not_switched_to():
    gone, alive = Inbox(), Inbox()
    got = []
    ended = eventlet.spawn(gone.get)
    kept = eventlet.spawn(lambda: got.append(alive.get()))
    eventlet.sleep(0)
    deliver([gone, alive], "x")
    ended.kill()  # the board's connection closed before the event loop ran the wake-up
    kept.wait()
    assert got == ["x"] and gone.parked is None
