"""A real rating database (SQLite and PostgreSQL) driven through the use-case functions, one
transaction per call as the entry points do: no nameko container, no broker."""

from __future__ import annotations

import pytest

from mpp_chassis.migrate import upgrade
from mpp_rating import usecases
from mpp_rating.adapters.tables import metadata
from tests.support.usecases import UseCases


@pytest.fixture
def desk(db_url_factory):
    url = db_url_factory("rating")
    upgrade("rating", url)
    runner = UseCases(url, metadata, "rating")
    runner.settings = usecases.Settings()
    yield runner
    runner.dispose()
