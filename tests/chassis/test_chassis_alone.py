"""A unit of work whose statements each commit alone (``Database(alone=…)``) stores no event
and claims none: neither could commit with the change it belongs to."""

from __future__ import annotations

import time

import pytest

from mpp_chassis.context import DEADLINE_KEY
from mpp_chassis.db import UnitOfWork
from mpp_chassis.engine import STATEMENTS_ALONE
from mpp_contracts.errors import ServiceUnavailable


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


class _Session:
    def __init__(self, alone: bool) -> None:
        self.info = {STATEMENTS_ALONE: alone}
        self.done: list[str] = []

    def commit(self) -> None:
        self.done.append("commit")

    def rollback(self) -> None:
        self.done.append("rollback")


@pytest.mark.parametrize("alone", [True, False])
def test_past_its_callers_deadline_only_a_transaction_is_refused(alone):
    """A commit past the caller's deadline is refused (503 DEADLINE_EXCEEDED, rolled back), but
    statements that each committed alone are done already: refusing would say "nothing was
    done" of a change that stands."""
    session = _Session(alone)
    uow = UnitOfWork(
        session,
        outbox=None,
        processed=None,
        source="svc",
        mall="mpp-test",
        context_data={DEADLINE_KEY: time.time() - 1},
        on_commit=None,
        alone=alone,
    )
    if alone:
        uow.commit()
        assert session.done == ["commit"]
    else:
        with pytest.raises(ServiceUnavailable) as refused:
            uow.commit()
        assert refused.value.code == "DEADLINE_EXCEEDED"
        assert session.done == ["rollback"]
