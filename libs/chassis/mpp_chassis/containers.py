"""The service container every service of the mall runs in (``SERVICE_CONTAINER_CLS``).

nameko stops a container on SIGTERM at once, even while it is still starting. A stop before
the AMQP consumer is ready makes each of its entry points tell the consumer it was the last
one (``QueueConsumer.unregister_provider``); the second one raises on an event already sent,
and the stop never finishes: the process lingered until something killed it (20 s in the
test harness, the grace period under Kubernetes). A service answers ``/healthz`` before its
consumer is ready, so a stop right after a start found it.

:class:`MallContainer` lets a start under way finish first, for at most ``START_GRACE_SECONDS``;
a start still not done then (the broker unreachable since) is killed instead: nothing has been
consumed yet, so nothing is left half done.
"""

from __future__ import annotations

import logging

import eventlet
from eventlet.event import Event
from nameko.containers import ServiceContainer

_log = logging.getLogger(__name__)

START_GRACE_SECONDS = 10.0


class MallContainer(ServiceContainer):
    def __init__(self, service_cls, config) -> None:
        super().__init__(service_cls, config)
        self._start_done = Event()

    def start(self) -> None:
        try:
            super().start()
        finally:
            if not self._start_done.ready():
                self._start_done.send(None)

    def stop(self) -> None:
        if self.started and not self._start_done.ready():
            with eventlet.Timeout(START_GRACE_SECONDS, False):
                self._start_done.wait()
            if not self._start_done.ready():
                _log.warning("stopped while still starting: killed")
                self.kill()
                return
        super().stop()
