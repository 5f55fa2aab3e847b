"""One mall per test module (SQLite), started once: the gateway's e2e tests share it."""

from __future__ import annotations

import signal

import pytest

from tests.support import infra


@pytest.fixture(scope="module")
def shared_mall(tmp_path_factory, migrated_templates):
    from tests.support.mall import SERVICES, Mall

    infra.require_rabbitmq()
    vhost = infra.create_vhost()
    tmp = tmp_path_factory.mktemp("mall")
    urls = {name: f"sqlite:///{tmp}/{name}.db" for name in SERVICES}
    mall = Mall(
        infra.uri_for_vhost(vhost),
        urls,
        tmp,
        {
            "RATE_LIMIT_PER_MINUTE": "100000",
            "RATE_LIMIT_PUBLIC_PER_MINUTE": "100000",
            "DISPLAY_HEARTBEAT_SECONDS": "1",
        },
        templates=migrated_templates,
    )
    try:
        yield mall.start()
    finally:
        mall.stop(signal.SIGKILL)  # nothing more is asserted (tests/conftest.py's mall_factory)
        if vhost:
            infra.delete_vhost(vhost)
