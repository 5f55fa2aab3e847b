"""A service stopped while it is still starting stops, instead of hanging until it is killed
(``mpp_chassis.containers.MallContainer``, every service's ``SERVICE_CONTAINER_CLS``)."""

from __future__ import annotations

from urllib.parse import urlsplit

import eventlet
import pytest
import yaml
from nameko.containers import ServiceContainer, get_container_cls
from nameko.events import event_handler

from mpp_chassis.containers import MallContainer
from tests.support.mall import ROOT
from tests.support.proxy import TcpProxy


class TwoHandlers:
    name = "stops_while_starting"

    @event_handler("elsewhere", "first")
    def first(self, payload):
        pass

    @event_handler("elsewhere", "second")
    def second(self, payload):
        pass


def stop_while_starting(container_cls, amqp_uri: str) -> str:
    """Start a container whose broker refuses it for a second, stop it then, give the broker
    back half a second later: whether the stop "stopped" within 15 s, "raised" (under
    ``nameko run`` the process then never ends) or "hung"."""
    parts = urlsplit(amqp_uri)
    proxy = TcpProxy(parts.hostname, parts.port or 5672)
    proxy.cut()
    uri = f"amqp://{parts.username}:{parts.password}@127.0.0.1:{proxy.port}{parts.path}"
    container = container_cls(TwoHandlers, {"AMQP_URI": uri})
    starting = eventlet.spawn(container.start)
    try:
        eventlet.sleep(1)  # its consumer is still trying to connect: not ready
        assert not starting.dead
        stopping = eventlet.spawn(container.stop)
        eventlet.sleep(0.5)
        proxy.restore()
        with eventlet.Timeout(15, False):
            try:
                stopping.wait()
            except Exception:
                return "raised"
            return "stopped"
        return "hung"
    finally:
        if not container._died.ready():
            container.kill()
        starting.kill()
        proxy.close()


def test_a_service_stopped_while_starting_stops(amqp_uri):
    assert stop_while_starting(MallContainer, amqp_uri) == "stopped"


def test_nameko_s_own_container_fails_to_stop_there(amqp_uri):
    """What MallContainer is for: nameko's container, stopped the same way, raises from its
    second entry point's stop (an event already sent), so ``nameko run`` never exits."""
    assert stop_while_starting(ServiceContainer, amqp_uri) == "raised"


@pytest.mark.parametrize("service", ["queue", "payment", "rating", "gateway"])
def test_every_service_runs_in_the_mall_container(service):
    config = yaml.safe_load((ROOT / "services" / service / "config.yaml").read_text())
    assert get_container_cls(config) is MallContainer
