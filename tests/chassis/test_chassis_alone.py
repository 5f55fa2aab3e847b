"""A unit of work whose statements each commit alone (``Database(alone=…)``) stores no event
and claims none: neither could commit with the change it belongs to."""

from __future__ import annotations

import pytest

from mpp_chassis.db import UnitOfWork


def _uow(alone: bool) -> UnitOfWork:
    return UnitOfWork(
        None,
        outbox=object(),
        processed=object(),
        source="svc",
        mall="mpp-test",
        context_data={},
        on_commit=None,
        alone=alone,
    )


def test_a_unit_of_work_alone_refuses_events_and_claims():
    uow = _uow(alone=True)
    with pytest.raises(RuntimeError, match="alone"):
        uow.add_event("thing_happened", {"id": "1"})
    with pytest.raises(RuntimeError, match="alone"):
        uow.event_row("thing_happened", {"id": "1"})
    with pytest.raises(RuntimeError, match="alone"):
        uow.claim_event("event-1", "handle_thing")
