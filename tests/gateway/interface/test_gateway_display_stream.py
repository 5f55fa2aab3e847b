"""The display stream: broadcast events reach open SSE streams, filtered by agency, with
heartbeats and Last-Event-ID resume."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import eventlet
import pytest
from nameko.standalone.events import event_dispatcher

from mpp_contracts.envelope import make_envelope
from tests.gateway.interface.conftest import ADMIN_KEY
from tests.support.infra import wait_until

# issuing a key asks the queue whether the agency exists
pytestmark = pytest.mark.usefixtures("agencies_stand_in")


def called(agency: str, number: str, correlation_id: str = "corr-1") -> dict:
    now = datetime.now(UTC).isoformat()
    return make_envelope(
        "ticket_called",
        {
            "ticket_id": f"t-{number}",
            "journey_id": f"j-{number}",
            "number": number,
            "agency_id": agency,
            "service_id": "s1",
            "service_code": "PASPOR",
            "issued_at": now,
            "counter_id": "c1",
            "counter_name": "Loket 1",
            "call_count": 1,
            "called_at": now,
            "announcement": f"Nomor antrean {number}, silakan ke Loket 1",
        },
        source="queue",
        mall="mpp-test",
        correlation_id=correlation_id,
    )


class Stream:
    """Reads an SSE response on a greenthread; ``events`` fills as frames arrive."""

    def __init__(self, gateway, key, headers=None, params=None):
        self.response = gateway.request(
            "GET", "/v1/display/stream", key, headers=headers or {}, params=params, stream=True
        )
        assert self.response.status_code == 200, self.response.text
        assert self.response.headers["Content-Type"].startswith("text/event-stream")
        self.events: list[dict] = []
        self.comments: list[str] = []
        self.thread = eventlet.spawn(self._read)

    def _read(self):
        current: dict = {}
        for line in self.response.iter_lines(decode_unicode=True):
            if line.startswith(":"):
                self.comments.append(line)
            elif line == "":
                if current:
                    self.events.append(current)
                current = {}
            else:
                field, _, value = line.partition(": ")
                current[field] = value

    def data(self, event_type="ticket_called"):
        return [json.loads(e["data"]) for e in self.events if e.get("event") == event_type]

    def close(self):
        self.thread.kill()
        self.response.close()


@pytest.fixture
def dispatch(gateway):
    send = event_dispatcher({"AMQP_URI": gateway.config["AMQP_URI"]})
    return lambda envelope: send("queue", envelope["type"], envelope)


def issue(gateway, agency, role, **body):
    answer = gateway.request(
        "POST", f"/v1/agencies/{agency}/api-keys", ADMIN_KEY, json={"role": role, **body}
    )
    assert answer.status_code == 201, answer.text
    return answer.json()["key"]


def test_calls_reach_streams_filtered_by_agency_with_heartbeats(gateway, dispatch):
    mall_board = Stream(gateway, issue(gateway, "agency-a", "display", scope="mall"))
    board_b = Stream(gateway, issue(gateway, "agency-b", "display"))
    filtered = Stream(gateway, ADMIN_KEY, params={"agency": "agency-b"})
    try:
        dispatch(called("agency-a", "P-001", correlation_id="journey-7"))
        first = wait_until(lambda: mall_board.data(), timeout=10, message="call on mall board")
        assert first[0]["number"] == "P-001" and first[0]["correlation_id"] == "journey-7"
        assert "Loket 1" in first[0]["announcement"]
        dispatch(called("agency-b", "B-001"))
        wait_until(lambda: board_b.data() and filtered.data(), timeout=10, message="b boards")
        wait_until(lambda: len(mall_board.data()) == 2, timeout=10, message="second call")
        assert [e["number"] for e in board_b.data()] == ["B-001"]
        assert [e["number"] for e in filtered.data()] == ["B-001"]
        wait_until(lambda: ": heartbeat" in board_b.comments, timeout=5, message="heartbeat")
    finally:
        for stream in (mall_board, board_b, filtered):
            stream.close()


def test_last_event_id_resumes_from_the_buffer_or_asks_for_resync(gateway, dispatch):
    key = issue(gateway, "agency-a", "display")
    first = Stream(gateway, key)
    dispatch(called("agency-a", "P-001"))
    dispatch(called("agency-a", "P-002"))
    wait_until(lambda: len(first.data()) == 2, timeout=10, message="two calls")
    first.close()
    last_seen = first.events[-2]["id"]
    resumed = Stream(gateway, key, headers={"Last-Event-ID": last_seen})
    lost = Stream(gateway, key, headers={"Last-Event-ID": "long-gone"})
    try:
        wait_until(lambda: resumed.data(), timeout=10, message="replay")
        assert [e["number"] for e in resumed.data()] == ["P-002"]
        wait_until(lambda: lost.data("resync"), timeout=10, message="resync")
        assert [e["event"] for e in lost.events if "event" in e] == ["resync"]
    finally:
        resumed.close()
        lost.close()


def test_only_display_keys_and_their_own_agency(gateway):
    officer = issue(gateway, "agency-a", "officer")
    assert gateway.request("GET", "/v1/display/stream").status_code == 401
    assert gateway.request("GET", "/v1/display/stream", officer).status_code == 403
    board_a = issue(gateway, "agency-a", "display")
    other = gateway.request(
        "GET", "/v1/display/stream", board_a, params={"agency": "agency-b"}, stream=True
    )
    assert other.status_code == 403
