"""The gateway has no use-case layer of its own (its routes call the services' RPCs); the rules
it decides itself (API keys, who may call what, Idempotency-Key) run here on a real gateway
database (SQLite and PostgreSQL), without nameko or a broker (docs/testing.md)."""

from __future__ import annotations

import pytest

from mpp_chassis.migrate import upgrade
from mpp_gateway.adapters.tables import metadata
from tests.support.usecases import UseCases


@pytest.fixture
def desk(db_url_factory):
    url = db_url_factory("gateway")
    upgrade("gateway", url)
    runner = UseCases(url, metadata, "gateway")
    yield runner
    runner.dispose()
