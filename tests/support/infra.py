"""Where the tests find RabbitMQ and PostgreSQL.

Here (and in CI) both run locally and are used as they are. On a laptop where one does not answer
but a Docker engine does, a throwaway container is started through the Docker SDK; with neither,
tests that need it are skipped with the reason.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
import uuid
from urllib.parse import quote, urlparse

import pytest
import requests

AMQP_URI = os.environ.get("TEST_AMQP_URI", "amqp://guest:guest@127.0.0.1:5672/")
RABBIT_API = os.environ.get("TEST_RABBIT_API", "http://guest:guest@127.0.0.1:15672/api")
PG_URL = os.environ.get("TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")

_containers: list = []


def answers(host: str, port: int, timeout: float = 1.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _docker():
    try:
        import docker

        client = docker.from_env()
        client.ping()
        return client
    except Exception:
        return None


def _start_container(image: str, ports: dict, env: dict | None = None) -> bool:
    client = _docker()
    if client is None:
        return False
    container = client.containers.run(
        image,
        detach=True,
        remove=True,
        ports=ports,
        environment=env or {},
        name=f"mpp-test-{uuid.uuid4().hex[:8]}",
    )
    _containers.append(container)
    return True


def stop_containers() -> None:
    for container in _containers:
        try:
            container.stop(timeout=5)
        except Exception:
            pass


def _wait(host: str, port: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if answers(host, port):
            return True
        time.sleep(0.5)
    return False


def require_rabbitmq() -> str:
    parsed = urlparse(AMQP_URI)
    host, port = parsed.hostname, parsed.port or 5672
    if answers(host, port):
        return AMQP_URI
    if _start_container("rabbitmq:3.13-management", {"5672/tcp": port, "15672/tcp": 15672}):
        if _wait(host, port, 90):
            time.sleep(5)
            return AMQP_URI
    pytest.skip(f"RabbitMQ does not answer at {host}:{port} and no Docker engine is available")


def require_postgres() -> str:
    parsed = urlparse(PG_URL)
    host, port = parsed.hostname, parsed.port or 5432
    if answers(host, port):
        return PG_URL
    if _start_container(
        "postgres:16-alpine", {"5432/tcp": port}, {"POSTGRES_HOST_AUTH_METHOD": "trust"}
    ):
        if _wait(host, port, 60):
            time.sleep(3)
            return PG_URL
    pytest.skip(f"PostgreSQL does not answer at {host}:{port} and no Docker engine is available")


def create_vhost() -> str:
    """A fresh RabbitMQ virtual host, so tests never see each other's (or a dev mall's) queues.
    Made through the management API, or ``rabbitmqctl`` when the plugin is off; never the
    shared "/" (a test on "/" answers a running mall's RPCs and fails, or breaks it)."""
    name = f"mpp-test-{uuid.uuid4().hex[:10]}"
    try:
        requests.put(f"{RABBIT_API}/vhosts/{quote(name, safe='')}", timeout=5).raise_for_status()
        requests.put(
            f"{RABBIT_API}/permissions/{quote(name, safe='')}/guest",
            json={"configure": ".*", "write": ".*", "read": ".*"},
            timeout=5,
        ).raise_for_status()
        return name
    except requests.RequestException:
        pass
    try:
        grant = ["set_permissions", "-p", name, "guest", ".*", ".*", ".*"]
        for args in (["add_vhost", name], grant):
            subprocess.run(
                ["rabbitmqctl", "-q", *args], check=True, capture_output=True, timeout=60
            )
    except (OSError, subprocess.SubprocessError) as exc:
        pytest.fail(
            f"cannot make a RabbitMQ vhost: neither the management API ({RABBIT_API}) nor "
            f"rabbitmqctl answered ({exc}); `rabbitmq-plugins enable rabbitmq_management`"
        )
    return name


def delete_vhost(name: str) -> None:
    try:
        requests.delete(f"{RABBIT_API}/vhosts/{quote(name, safe='')}", timeout=10)
        return
    except requests.RequestException:
        pass
    try:
        subprocess.run(["rabbitmqctl", "-q", "delete_vhost", name], capture_output=True, timeout=60)
    except (OSError, subprocess.SubprocessError):
        pass


def queue_info(vhost: str, queue: str) -> dict:
    response = requests.get(
        f"{RABBIT_API}/queues/{quote(vhost, safe='')}/{quote(queue, safe='')}", timeout=5
    )
    response.raise_for_status()
    return response.json()


def uri_for_vhost(vhost: str | None) -> str:
    base = require_rabbitmq().rstrip("/")
    return f"{base}/{quote(vhost, safe='')}" if vhost else f"{base}/"


def create_database(prefix: str = "mpp_test") -> str:
    """A fresh, empty PostgreSQL database; returns its URL."""
    import sqlalchemy as sa

    admin_url = require_postgres()
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    engine = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    return admin_url.rsplit("/", 1)[0] + "/" + name


def drop_database(url: str) -> None:
    import sqlalchemy as sa

    name = url.rsplit("/", 1)[1]
    engine = sa.create_engine(require_postgres(), isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    engine.dispose()


def database_connections(url: str, *, allowed: bool) -> None:
    """Let the database at ``url`` take connections again, or refuse every new one and end the
    open ones: that database alone goes away, the shared server keeps serving every other test."""
    import sqlalchemy as sa

    name = url.rsplit("/", 1)[1]
    engine = sa.create_engine(require_postgres(), isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(sa.text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS {str(allowed).lower()}'))
        if not allowed:
            conn.execute(
                sa.text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE datname = :n AND pid <> pg_backend_pid()"
                ),
                {"n": name},
            )
    engine.dispose()


def wait_until(predicate, timeout: float = 20.0, interval: float = 0.05, message: str = ""):
    """Poll ``predicate`` until it returns a truthy value or the deadline passes."""
    import eventlet

    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {message or predicate}")
        eventlet.sleep(interval)
