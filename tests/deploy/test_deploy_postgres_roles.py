"""Compose's PostgreSQL: each service connects as its own role to its own database, never as the
superuser. deploy/postgres/init-databases.sh is run for real against a private, throw-away
PostgreSQL (initdb in a temporary directory, its own port: the shared one is not touched), and
the roles it makes are tried over TCP with their passwords."""

from __future__ import annotations

import glob
import os
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

import psycopg2
import pytest

from tests.deploy.conftest import DEPLOY, SERVICES
from tests.support.mall import free_port

INIT = DEPLOY / "postgres" / "init-databases.sh"
PASSWORDS = {f"{s.upper()}_DB_PASSWORD": f"{s}-secret-'quote" for s in SERVICES}
PASSWORDS["POSTGRES_MONITOR_PASSWORD"] = "monitor-secret"


@pytest.fixture(scope="module")
def postgres():
    """A private PostgreSQL server (as the ``postgres`` system user: the server refuses root),
    superuser ``mpp`` over its socket, passwords (SCRAM) over TCP; yields the environment
    init-databases.sh runs with."""
    binaries = sorted(glob.glob("/usr/lib/postgresql/*/bin"))
    if not binaries or shutil.which("psql") is None:
        pytest.fail("PostgreSQL's server binaries are not installed (.ci/run uses them)")
    bin_dir = Path(binaries[-1])
    as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    directory = Path(tempfile.mkdtemp(prefix="mpp-init-"))
    if as_postgres:
        shutil.chown(directory, "postgres", "postgres")
    data, port = directory / "data", free_port()
    subprocess.run(
        [*as_postgres, bin_dir / "initdb", "-D", data, "-U", "mpp", "--auth-local=trust",
         "--auth-host=scram-sha-256"],
        check=True, capture_output=True,
    )  # fmt: skip
    server = subprocess.Popen(
        [*as_postgres, bin_dir / "postgres", "-D", data, "-p", str(port), "-k", directory,
         "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    env = {**os.environ, **PASSWORDS, "POSTGRES_USER": "mpp", "PGHOST": str(directory)}
    env["PGPORT"] = str(port)
    try:
        for _ in range(100):
            if subprocess.run(["pg_isready", "-q"], env=env).returncode == 0:
                break
            time.sleep(0.1)
        else:
            pytest.fail("the private PostgreSQL did not start")
        yield env
    finally:
        server.terminate()
        server.wait(timeout=30)
        shutil.rmtree(directory, ignore_errors=True)


def run_init(env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", INIT], env=env, capture_output=True, text=True, timeout=60)


def connect(env: dict, user: str, password: str, database: str):
    return psycopg2.connect(
        host="127.0.0.1", port=env["PGPORT"], user=user, password=password, dbname=database
    )


def test_each_service_reaches_its_own_database_only_as_its_own_role(postgres):
    result = run_init(postgres)
    assert result.returncode == 0, result.stderr
    assert run_init(postgres).returncode == 0, "running it again changes nothing"
    for service in SERVICES:
        password = PASSWORDS[f"{service.upper()}_DB_PASSWORD"]
        with connect(postgres, service, password, service) as conn, conn.cursor() as cur:
            cur.execute("SELECT rolsuper, rolcreaterole, rolcreatedb FROM pg_roles"
                        " WHERE rolname = current_user")  # fmt: skip
            assert cur.fetchone() == (False, False, False), service
            cur.execute("SELECT pg_get_userbyid(datdba) FROM pg_database"
                        " WHERE datname = current_database()")  # fmt: skip
            assert cur.fetchone() == (service,), "owner of its database: it migrates it"
            cur.execute("CREATE TABLE t (id int)")  # what a migration does
        conn.close()
        for other in SERVICES:
            if other != service:
                with pytest.raises(psycopg2.OperationalError, match="permission denied"):
                    connect(postgres, service, password, other)
        with pytest.raises(psycopg2.OperationalError, match="authentication failed"):
            connect(postgres, service, "wrong", service)


def test_the_exporter_role_only_monitors(postgres):
    assert run_init(postgres).returncode == 0
    with connect(postgres, "monitor", "monitor-secret", "postgres") as conn, conn.cursor() as cur:
        cur.execute("SELECT pg_has_role('monitor', 'pg_monitor', 'member'), rolsuper"
                    " FROM pg_roles WHERE rolname = 'monitor'")  # fmt: skip
        assert cur.fetchone() == (True, False)
    conn.close()
    with pytest.raises(psycopg2.OperationalError, match="permission denied"):
        connect(postgres, "monitor", "monitor-secret", "queue")


def test_a_missing_password_stops_the_init(postgres):
    env = {k: v for k, v in postgres.items() if k != "RATING_DB_PASSWORD"}
    result = run_init(env)
    assert result.returncode != 0 and "set RATING_DB_PASSWORD" in result.stderr


def test_compose_gives_each_service_its_own_role_and_database_url(compose):
    """As compose renders it (YAML anchors and merges resolved): the service and its migration
    get one database URL, their own, with their own role and password variable."""
    services = compose["services"]
    postgres_env = services["postgres"]["environment"]
    exporter_env = services["postgres-exporter"]["environment"]
    assert exporter_env["DATA_SOURCE_USER"] == "monitor"
    assert "POSTGRES_MONITOR_PASSWORD" in exporter_env["DATA_SOURCE_PASS"]
    for service in SERVICES:
        variable = f"{service.upper()}_DB_PASSWORD"
        assert variable in postgres_env, f"init-databases.sh needs {variable}"
        for name in (service, f"migrate-{service}"):
            env = services[name]["environment"]
            urls = {k: v for k, v in env.items() if k.endswith("_DB_URL")}
            assert list(urls) == [f"{service.upper()}_DB_URL"], f"{name}: {list(urls)}"
            url = urls[f"{service.upper()}_DB_URL"]
            assert f"${{{variable}:?" in url, f"{name}: the password is required"
            parts = urlsplit(re.sub(r"\$\{([A-Z0-9_]+)[^}]*\}", r"VAR-\1", url))
            assert parts.username == service != postgres_env["POSTGRES_USER"], name
            assert parts.password == f"VAR-{variable}", name
            assert parts.hostname == "postgres" and parts.path == f"/{service}"
