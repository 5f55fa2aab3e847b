"""The gateway freezes what survived a full garbage collection (later full collections then skip
those long-lived objects) and unfreezes everything on its period, so cycles that died among the
frozen objects are freed by the next full collection."""

from __future__ import annotations

import gc

import pytest

from mpp_chassis.collector import SurvivorFreezer


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Cycle:
    def __init__(self) -> None:
        self.me = self


@pytest.fixture(autouse=True)
def unfrozen():
    gc.unfreeze()
    yield
    gc.unfreeze()


def test_survivors_of_a_full_collection_are_frozen_and_unfrozen_on_the_period():
    clock = Clock()
    freezer = SurvivorFreezer(unfreeze_every=3600, clock=clock)
    freezer.tick()
    assert gc.get_freeze_count() == 0  # no full collection yet: nothing to freeze
    freezer.after_collection("start", {"generation": 2})
    freezer.after_collection("stop", {"generation": 1})
    freezer.tick()
    assert gc.get_freeze_count() == 0  # only a full collection's survivors are frozen
    freezer.after_collection("stop", {"generation": 2})
    freezer.tick()
    assert gc.get_freeze_count() > 0
    clock.now = 3600
    freezer.tick()
    assert gc.get_freeze_count() == 0


def test_a_cycle_that_died_while_frozen_is_freed_after_the_unfreeze():
    clock = Clock()
    freezer = SurvivorFreezer(unfreeze_every=60, clock=clock)
    doomed = Cycle()
    import weakref

    alive = weakref.ref(doomed)
    freezer.after_collection("stop", {"generation": 2})
    freezer.tick()  # ``doomed`` is frozen with everything else alive now
    del doomed
    gc.collect()
    assert alive() is not None  # frozen: the collector does not look at it
    clock.now = 60
    freezer.tick()
    gc.collect()
    assert alive() is None


INSTANCES: list = []


def test_a_finished_worker_is_freed_by_refcounting_not_left_to_the_collector(
    container_factory, amqp_uri
):
    """nameko's worker context holds the service instance, which holds the RPC proxies, which
    hold the context: without the break every finished worker was cyclic garbage (~45 objects a
    request in the gateway), and a freeze that caught one in flight kept it until the unfreeze."""
    import weakref

    from nameko.rpc import RpcProxy
    from nameko.testing.services import entrypoint_hook

    from mpp_chassis.collector import FrozenSurvivors
    from mpp_chassis.messaging import rpc

    class Worker:
        name = "cycles"
        collector = FrozenSurvivors()
        other = RpcProxy("elsewhere")  # holds the worker context, like every RPC proxy

        @rpc
        def work(self) -> str:
            INSTANCES.append(weakref.ref(self))
            return "done"

    container = container_factory(Worker, {"AMQP_URI": amqp_uri, "GC_UNFREEZE_SECONDS": 0})
    container.start()
    INSTANCES.clear()
    gc.disable()  # only refcounting may free it
    try:
        with entrypoint_hook(container, "work") as work:
            assert work() == "done"
        alive = INSTANCES[0]() is not None
    finally:
        gc.enable()
    assert not alive
