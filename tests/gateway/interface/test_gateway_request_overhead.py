"""What the gateway no longer does on every request, with what it answers unchanged."""

from __future__ import annotations

import inspect

import pytest
from nameko.exceptions import IncorrectSignature

from mpp_gateway.http import GatewayEntrypoint


def test_route_arguments_are_checked_against_a_signature_built_once(
    container_factory, gateway_config, monkeypatch
):
    """nameko checked every request's arguments with ``inspect.getcallargs``, which rebuilds the
    route's signature each time; arguments that do not fit are still refused with its text."""
    from mpp_gateway.service import GatewayService

    getcallargs = inspect.getcallargs
    checked: list[str] = []

    def counting_getcallargs(fn, *args, **kwargs):
        checked.append(fn.__name__)
        return getcallargs(fn, *args, **kwargs)

    monkeypatch.setattr(inspect, "getcallargs", counting_getcallargs)
    container = container_factory(GatewayService, gateway_config)
    container.start()
    routes = {e.method_name: e for e in container.entrypoints if isinstance(e, GatewayEntrypoint)}
    routes["healthz"].check_signature(("request",), {})
    routes["get_ticket"].check_signature(("request",), {"ticket": "t1"})
    assert checked == []
    with pytest.raises(IncorrectSignature) as misfit:
        routes["get_ticket"].check_signature((), {"ticket": "t1"})
    with pytest.raises(TypeError) as nameko_says:
        getcallargs(GatewayService.get_ticket, None, ticket="t1")
    assert str(misfit.value) == str(nameko_says.value)
