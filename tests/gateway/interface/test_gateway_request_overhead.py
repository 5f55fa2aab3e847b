"""What the gateway no longer does on every request, with what it answers unchanged."""

from __future__ import annotations

import inspect
import logging

import pytest
from nameko.exceptions import IncorrectSignature

from mpp_gateway.http import GatewayEntrypoint
from tests.gateway.interface.conftest import ADMIN_KEY, Gateway


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


def test_requests_that_need_no_database_open_no_session(container_factory, gateway_config):
    """A public route, and a key this process resolved moments ago, answer without a database
    session (one was built and closed per request); the first use of a key still looks it up."""
    from mpp_chassis.db import Database
    from mpp_gateway.service import GatewayService

    container = container_factory(GatewayService, gateway_config)
    container.start()
    gateway = Gateway(f"http://{gateway_config['WEB_SERVER_ADDRESS']}", gateway_config)
    database = next(d for d in container.dependencies if isinstance(d, Database))
    opened: list[object] = []
    sessionmaker = database.sessionmaker

    def counting_sessionmaker():
        opened.append(None)
        return sessionmaker()

    database.sessionmaker = counting_sessionmaker
    assert gateway.request("GET", "/healthz").status_code == 200
    assert opened == []
    invalid = {"label": 5}  # 422 after auth, before any RPC
    first = gateway.request("POST", "/v1/agencies/a/api-keys", ADMIN_KEY, json=invalid)
    assert first.status_code == 422
    assert len(opened) == 1  # the bootstrap key recorded and looked up
    again = gateway.request("POST", "/v1/agencies/a/api-keys", ADMIN_KEY, json=invalid)
    assert again.status_code == 422 and again.json()["error"] == {
        **first.json()["error"],
        "request_id": again.headers["X-Request-ID"],
    }
    assert len(opened) == 1
    assert gateway.request("GET", "/v1/agencies/a/api-keys", "mpp_unknown").status_code == 401
    assert len(opened) == 2  # an unknown key is looked up every time


def test_eventlets_access_line_is_formatted_only_when_its_logger_writes_it(
    gateway, monkeypatch, caplog
):
    """eventlet formatted its access line (its own timestamp too) for every request, and the
    mall's logging dropped it (``nameko`` at WARNING); it is still written at INFO."""
    from mpp_gateway.http import EnvelopeProtocol

    stamps: list[str] = []
    stamp = EnvelopeProtocol.log_date_time_string

    def counting_stamp(self):
        stamps.append(stamp(self))
        return stamps[-1]

    monkeypatch.setattr(EnvelopeProtocol, "log_date_time_string", counting_stamp)
    logger = logging.getLogger("nameko.web.server")
    level = logger.level
    try:
        logger.setLevel(logging.WARNING)
        assert gateway.request("GET", "/healthz").status_code == 200
        assert stamps == []
        logger.setLevel(logging.INFO)
        with caplog.at_level(logging.INFO, logger="nameko.web.server"):
            assert gateway.request("GET", "/healthz").status_code == 200
    finally:
        logger.setLevel(level)
    assert len(stamps) == 1
    assert any('"GET /healthz HTTP/1.1" 200' in r.getMessage() for r in caplog.records)
