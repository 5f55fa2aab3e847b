"""Shared fixtures: broker virtual hosts, databases (SQLite and PostgreSQL), service processes."""

from __future__ import annotations

import signal
import sys

import pytest

from tests.support import infra


def pytest_sessionfinish(session, exitstatus):
    infra.stop_containers()


@pytest.fixture
def vhost():
    infra.require_rabbitmq()
    name = infra.create_vhost()
    yield name
    if name:
        infra.delete_vhost(name)


@pytest.fixture
def amqp_uri(vhost) -> str:
    return infra.uri_for_vhost(vhost)


@pytest.fixture
def pg_url_factory():
    created: list[str] = []

    def make(prefix: str = "mpp_test") -> str:
        url = infra.create_database(prefix)
        created.append(url)
        return url

    yield make
    for url in created:
        infra.drop_database(url)


@pytest.fixture(params=["sqlite", "postgres"])
def db_url_factory(request, tmp_path, pg_url_factory):
    """Database URLs for one backend; tests using it run on SQLite and on PostgreSQL."""

    def make(name: str) -> str:
        if request.param == "sqlite":
            return f"sqlite:///{tmp_path}/{name}.db"
        return pg_url_factory(f"mpp_{name}")

    make.backend = request.param
    return make


@pytest.fixture(scope="session")
def migrated_templates(tmp_path_factory):
    """Each service's database migrated once a session; malls get copies (MigratedTemplates)."""
    from tests.support.mall import MigratedTemplates

    templates = MigratedTemplates(tmp_path_factory.mktemp("migrated"), infra.PG_URL)
    yield templates
    templates.close()


@pytest.fixture
def mall_factory(amqp_uri, tmp_path, pg_url_factory, migrated_templates):
    """Start the four services as processes; ``backend`` is 'sqlite' or 'postgres'."""
    from tests.support.mall import SERVICES, Mall

    malls = []

    def make(
        backend: str = "sqlite", extra_env: dict | None = None, python: str | None = None
    ) -> Mall:
        if backend == "sqlite":
            urls = {name: f"sqlite:///{tmp_path}/{name}.db" for name in SERVICES}
        else:
            urls = {name: pg_url_factory(f"mpp_{name}") for name in SERVICES}
        mall = Mall(
            amqp_uri,
            urls,
            tmp_path,
            extra_env or {},
            python=python or sys.executable,
            templates=migrated_templates,
        )
        malls.append(mall)
        return mall.start()

    yield make
    # the test is over: its processes are killed, not wound down (~3 s a mall). A graceful
    # stop is asserted where it matters (tests/tooling/test_tooling_runner.py, a board's
    # gateway in tests/web/test_screens_faults.py)
    for mall in malls:
        mall.stop(signal.SIGKILL)
