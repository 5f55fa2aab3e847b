"""The chassis's database tools find the services through their ``mpp.databases`` entry points:
``python -m mpp_chassis.migrate`` and ``python -m mpp_chassis.outbox`` name no service."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, inspect, text

from mpp_chassis import migrate, outbox

SERVICES = ("queue", "payment", "rating", "gateway")


def test_every_service_declares_its_database():
    assert migrate.databases() == {s: f"mpp_{s}.migrations" for s in sorted(SERVICES)}


@pytest.mark.parametrize("service", SERVICES)
def test_the_migrations_are_found_by_the_entry_point(service):
    config = migrate.alembic_config(service, "sqlite://")
    assert config.get_main_option("script_location") == f"mpp_{service}:migrations"


def test_an_unknown_service_is_refused_with_what_is_installed():
    with pytest.raises(LookupError, match="gateway, payment, queue, rating"):
        migrate.alembic_config("parking")
    with pytest.raises(SystemExit):
        migrate.main(["parking"])


def test_a_bare_migrate_migrates_every_installed_database(tmp_path, monkeypatch, capsys):
    for service in SERVICES:
        monkeypatch.setenv(f"{service.upper()}_DB_URL", f"sqlite:///{tmp_path}/{service}.db")

    assert migrate.main([]) == 0

    printed = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in printed] == [f"migrated {s}" for s in sorted(SERVICES)]
    for service in SERVICES:
        tables = inspect(create_engine(f"sqlite:///{tmp_path}/{service}.db")).get_table_names()
        # the services that emit events have an outbox; the gateway emits none and has none
        assert ("outbox" in tables) is (service != "gateway"), (service, tables)
        assert "alembic_version" in tables


def test_the_gateway_runs_no_relay_and_refuses_events(tmp_path):
    """Issue 19: the gateway emits no events, so it carries no outbox tables and no relay; a
    unit of work of a database without them refuses to store or claim one."""
    from nameko.containers import ServiceContainer
    from nameko.testing.services import dummy, entrypoint_hook

    from mpp_chassis.db import Database
    from mpp_gateway.adapters.tables import metadata as gateway_metadata

    assert {"outbox", "processed_events"}.isdisjoint(gateway_metadata.tables)
    url = f"sqlite:///{tmp_path}/gateway.db"
    migrate.upgrade("gateway", url)

    class Gateway:
        name = "gateway"
        uow = Database(gateway_metadata)

        @dummy
        def emit(self):
            self.uow.add_event("ticket_issued", {})

        @dummy
        def claim(self):
            self.uow.claim_event("e-1", "h")

    container = ServiceContainer(Gateway, {"DB_URL": url, "AMQP_URI": "memory://"})
    container.start()
    try:
        (provider,) = [d for d in container.dependencies if isinstance(d, Database)]
        assert provider.relay is None
        for entrypoint in ("emit", "claim"):
            with entrypoint_hook(container, entrypoint) as call, pytest.raises(RuntimeError):
                call()
    finally:
        container.stop()


def test_migrate_then_list_and_republish_a_parked_event(tmp_path, monkeypatch, capsys):
    url = f"sqlite:///{tmp_path}/rating.db"
    monkeypatch.setenv("RATING_DB_URL", url)
    assert migrate.main(["rating"]) == 0
    engine = create_engine(url)
    assert {"outbox", "processed_events", "ratings"} <= set(inspect(engine).get_table_names())
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO outbox (event_id, event_type, source, body, created_at, sent_at, "
                "attempts, last_error) VALUES ('e-1', 'rating_submitted', 'rating', '{}', "
                "CURRENT_TIMESTAMP, CURRENT_TIMESTAMP, 1, 'unroutable')"
            )
        )

    assert outbox.main(["parked", "rating"]) == 0
    assert "e-1  rating_submitted  parked" in capsys.readouterr().out
    assert outbox.main(["republish", "rating"]) == 0
    assert "1 parked event(s) of rating returned" in capsys.readouterr().out
    assert outbox.main(["parked", "rating"]) == 0
    assert capsys.readouterr().out == ""
