"""A service's garbage collector: what survives a full collection is left out of the next ones.

A busy service holds many long-lived objects (a gateway with thousands of display boards open:
a few hundred thousand — each stream's greenthread, frames, socket and request). CPython's full
collection traverses all of them — measured in the gateway ~80 ms at 1,000 boards and ~330 ms at
5,000 — and one lands on a request every few seconds under load, stalling every worker of the
process (every board, for a call). After each full collection the survivors are frozen
(``gc.freeze``): they are the live objects (the collection just freed the garbage among them),
and later collections traverse only what was created since. Every ``GC_UNFREEZE_SECONDS``
(default 3600; 0 turns all this off) they are unfrozen, so cycles that died among them
meanwhile (a board that disconnected) are freed by the next full collection.
"""

from __future__ import annotations

import gc
import time

import eventlet
from nameko.extensions import DependencyProvider

CHECK_SECONDS = 1.0


class SurvivorFreezer:
    """The policy, apart from nameko: ``after_collection`` is a ``gc.callbacks`` entry (it only
    sets a flag: it may run on any thread, inside the collector), ``tick`` runs on the event
    loop and freezes or unfreezes."""

    def __init__(self, unfreeze_every: float, clock=time.monotonic) -> None:
        self.unfreeze_every = unfreeze_every
        self.clock = clock
        self.full_collection_seen = False
        self.unfrozen_at = clock()

    def after_collection(self, phase: str, info: dict) -> None:
        if phase == "stop" and info.get("generation") == 2:
            self.full_collection_seen = True

    def tick(self) -> None:
        if self.clock() - self.unfrozen_at >= self.unfreeze_every:
            gc.unfreeze()  # the next full collection sees everything again
            self.unfrozen_at = self.clock()
            self.full_collection_seen = False
        elif self.full_collection_seen:
            self.full_collection_seen = False
            gc.freeze()


class FrozenSurvivors(DependencyProvider):
    """Installs :class:`SurvivorFreezer` for the service's process (``GC_UNFREEZE_SECONDS``),
    and frees each finished worker by refcounting (:meth:`worker_teardown`, whatever the
    setting)."""

    def setup(self) -> None:
        every = float(self.container.config.get("GC_UNFREEZE_SECONDS", 3600))
        self.freezer = SurvivorFreezer(every) if every > 0 else None
        self.running = False

    def start(self) -> None:
        if self.freezer is None:
            return
        self.running = True
        gc.callbacks.append(self.freezer.after_collection)
        self.container.spawn_managed_thread(self._loop)

    def worker_teardown(self, worker_ctx) -> None:
        """Break the reference cycle every nameko worker makes (its service instance holds its
        dependencies, RPC proxies hold the worker context, the context holds the instance), so
        refcounting frees a finished worker at once instead of leaving some forty objects per
        request to the collector, and to a freeze that caught them in flight."""
        worker_ctx.service = None

    def _loop(self) -> None:
        while self.running:
            eventlet.sleep(CHECK_SECONDS)
            self.freezer.tick()

    def stop(self) -> None:
        self.running = False
        if self.freezer is not None and self.freezer.after_collection in gc.callbacks:
            gc.callbacks.remove(self.freezer.after_collection)
            gc.unfreeze()

    def kill(self) -> None:
        self.stop()
