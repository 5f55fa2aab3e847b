"""Group commit: concurrent calls of one hot command in a process, gathered while the previous
group commits and handled by one of them in one transaction.

Each nameko worker runs in its own greenthread. The first caller of :meth:`Gatherer.submit`
opens a group and leads it. The group closes once its window (``GROUP_COMMIT_MS``) has passed
and the group in flight (if any) has been handled, whichever is later, or as soon as it is full
(``GROUP_COMMIT_SIZE``): so an idle process waits no more than the window, and under load
everything that arrived during one group's commit goes into the next, which grows with the
load (classic group commit). The leader then hands every caller's item to ``handle`` (its own
unit of work does the work and commits once); the others sleep until the leader sends each its
outcome. So a caller is answered only after the commit that stored its work, and a busy process
pays one transaction's round trips and one commit's flush for many calls.

What a group cannot settle for one caller (its outcome is :data:`ALONE`) that caller does alone,
in its own transaction, as without grouping: a command's invalid request never fails the
others. A window of 0 turns grouping off.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

import eventlet
from eventlet.event import Event
from nameko.extensions import DependencyProvider

from mpp_chassis import metrics

_log = logging.getLogger(__name__)

ALONE = None
"""The outcome of a caller that must do its work alone, in a transaction of its own."""

DEFAULT_WINDOW_MS = 2.0
DEFAULT_SIZE = 16


class _Group:
    __slots__ = ("done", "items", "wake")

    def __init__(self, item: Any) -> None:
        self.items = [item]
        self.wake = Event()  # sent when the group fills up or a group in flight is handled
        self.done = Event()


def _wake(group: _Group) -> None:
    if not group.wake.ready():
        group.wake.send()


class Gatherer:
    """Gathers concurrent calls into groups (greenthreads of one process: no locks needed)."""

    def __init__(
        self, window_seconds: float, size: int, labels: tuple[str, str] | None = None
    ) -> None:
        self.window = window_seconds
        self.size = size
        self._open: _Group | None = None
        self._in_flight = 0  # groups being handled now
        self._sizes = metrics.GROUP_COMMIT_SIZE.labels(*labels) if labels else None
        self.groups = 0  # how many groups were handled, and how many items: for tests and logs
        self.grouped = 0

    @property
    def enabled(self) -> bool:
        return self.window > 0 and self.size > 1

    def submit(self, item: Any, handle: Callable[[Sequence[Any]], Sequence[Any]]) -> Any:
        """Join the open group (or open and lead one) and return this item's outcome: what
        ``handle`` returned for it, :data:`ALONE`, or, raised here, the exception it returned.

        ``handle(items)`` runs in the leader's greenthread and returns one outcome per item, in
        order, once the group's transaction has committed (or rolled back: then it answers
        :data:`ALONE` for those it could not keep). If it raises, every caller goes alone.
        """
        group = self._open
        if group is not None:
            index = len(group.items)
            group.items.append(item)
            if len(group.items) >= self.size:
                self._open = None
                _wake(group)
            return _unwrap(group.done.wait()[index])
        group = self._open = _Group(item)
        self._gather(group)
        if self._open is group:
            self._open = None
        self._in_flight += 1
        try:
            outcomes = list(handle(group.items))
            if len(outcomes) != len(group.items):
                raise RuntimeError("a group's handler must answer every item")
        except Exception:
            _log.exception("a group failed: its callers go alone", extra={"size": len(group.items)})
            outcomes = [ALONE] * len(group.items)
        finally:
            self._in_flight -= 1
            if self._open is not None:  # the next group may close now (if its window passed)
                _wake(self._open)
        self.groups += 1
        self.grouped += len(group.items)
        if self._sizes is not None:
            self._sizes.observe(len(group.items))
        group.done.send(outcomes)
        return _unwrap(outcomes[0])

    def _gather(self, group: _Group) -> None:
        """Keep ``group`` open until it is full, or its window has passed and no group is in
        flight."""
        opened = time.monotonic()
        while self._open is group:
            if group.wake.ready():
                group.wake = Event()
            left = self.window - (time.monotonic() - opened)
            if left <= 0 and not self._in_flight:
                return
            with eventlet.Timeout(left if left > 0 else None, False):
                group.wake.wait()


def _unwrap(outcome: Any) -> Any:
    if isinstance(outcome, BaseException):
        raise outcome
    return outcome


class GroupCommit(DependencyProvider):
    """Injects the container's :class:`Gatherer` (one per service process and command).

    Settings: ``GROUP_COMMIT_MS`` (how long a group stays open at least, and at most when no
    other group is in flight; default 2; 0 turns grouping off) and ``GROUP_COMMIT_SIZE`` (at
    most that many calls in a group, default 16, never more than the container's workers).
    """

    def setup(self) -> None:
        config = self.container.config
        window_ms = float(config.get("GROUP_COMMIT_MS", DEFAULT_WINDOW_MS))
        size = min(int(config.get("GROUP_COMMIT_SIZE", DEFAULT_SIZE)), self.container.max_workers)
        labels = (self.container.service_name, self.attr_name)
        self.gatherer = Gatherer(window_ms / 1000, size, labels)

    def get_dependency(self, worker_ctx) -> Gatherer:
        return self.gatherer
