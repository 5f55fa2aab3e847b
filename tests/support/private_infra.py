"""PostgreSQL, Redis and RabbitMQ servers of a test's own, which a fault test may restart.

The machine's shared servers (5432, 6379, 5672) serve every other test running at the same
time: a fault test never restarts them. It starts its own with the distribution's tools, on free
ports, and removes them afterwards: a PostgreSQL cluster (``pg_createcluster``/``pg_ctlcluster``),
a ``redis-server`` without persistence, and a RabbitMQ node with its own name, data, logs and
management listener. Each is skipped (with the reason) where its tools are not installed.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
import requests

from tests.support.infra import answers
from tests.support.mall import free_port


def _run(*args: str, timeout: float = 120, env: dict | None = None) -> None:
    done = subprocess.run(args, capture_output=True, text=True, timeout=timeout, env=env)
    if done.returncode:
        raise RuntimeError(f"{' '.join(args)}: {done.returncode} {done.stderr[-2000:]}")


def _wait_port(port: int, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not answers("127.0.0.1", port, timeout=0.5):
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} does not answer on {port}")
        time.sleep(0.2)


class PrivatePostgres:
    """A cluster of the installed PostgreSQL version, trusting local connections."""

    def __init__(self) -> None:
        versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
        if not shutil.which("pg_createcluster") or not versions:
            pytest.skip("pg_createcluster (postgresql-common) is not installed")
        if os.geteuid() != 0:
            pytest.skip("a PostgreSQL cluster of the test's own is created as root")
        self.version = Path(versions[-1]).parts[-3]
        self.port = free_port()
        self.name = f"mppchaos{self.port}"

    def create(self) -> PrivatePostgres:
        _run(
            "pg_createcluster",
            self.version,
            self.name,
            "-p",
            str(self.port),
            # two processes of every service: their pools together exceed the default 100
            "-o",
            "max_connections=400",
            "-o",
            "fsync=off",  # a throwaway cluster: durability across a power cut is not tested
            "--",
            "--auth=trust",
        )
        _run("pg_ctlcluster", self.version, self.name, "start")
        _wait_port(self.port, 30, "private PostgreSQL")
        return self

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        import sqlalchemy as sa

        engine = sa.create_engine(self.url(), isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        engine.dispose()
        return self.url(name)

    def restart(self) -> float:
        """``pg_ctlcluster … restart`` (fast mode: every session is cut); seconds it took."""
        began = time.monotonic()
        _run("pg_ctlcluster", self.version, self.name, "restart")
        _wait_port(self.port, 30, "private PostgreSQL")
        return time.monotonic() - began

    def drop(self) -> None:
        subprocess.run(
            ["pg_dropcluster", "--stop", self.version, self.name], capture_output=True, timeout=60
        )


class PrivateRedis:
    """``redis-server`` on a free port, no persistence: stopping it loses every counter."""

    def __init__(self, log_path: Path) -> None:
        if not shutil.which("redis-server"):
            pytest.skip("redis-server is not installed")
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.log_path = log_path
        self.process: subprocess.Popen | None = None

    def start(self) -> PrivateRedis:
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1"]
                + ["--save", "", "--appendonly", "no"],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        _wait_port(self.port, 15, "private Redis")
        return self

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=15)


class PrivateRabbit:
    """A RabbitMQ node of its own (name, ports, data, logs, management listener).

    Restarted whole (``rabbitmqctl stop``, then the server again on the same data): on this
    RabbitMQ (3.10) ``stop_app``/``start_app`` could not reopen the AMQP listener
    (``eaddrinuse``), so the node's application restart is not what is injected.
    """

    def __init__(self) -> None:
        if not shutil.which("rabbitmq-server") or not shutil.which("rabbitmqctl"):
            pytest.skip("rabbitmq-server is not installed")
        if os.geteuid() != 0:
            pytest.skip("a RabbitMQ node of the test's own is started as root")
        # a directory of its own in /tmp: the server runs as the rabbitmq user, which cannot
        # reach into pytest's private tmp_path
        self.base = Path(tempfile.mkdtemp(prefix="mppchaos-rabbitmq-"))
        self.port, self.api_port, self.dist_port = free_port(), free_port(), free_port()
        self.node = f"mppchaos{self.port}@localhost"
        self.amqp_uri = f"amqp://guest:guest@127.0.0.1:{self.port}/"
        self.api = f"http://guest:guest@127.0.0.1:{self.api_port}/api"
        self.process: subprocess.Popen | None = None

    @property
    def env(self) -> dict:
        return {
            **os.environ,
            "RABBITMQ_NODENAME": self.node,
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_CONFIG_FILE": str(self.base / "rabbitmq.conf"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.base / "enabled_plugins"),
            "RABBITMQ_MNESIA_BASE": str(self.base / "mnesia"),
            "RABBITMQ_LOG_BASE": str(self.base / "log"),
            "RABBITMQ_PID_FILE": str(self.base / "pid"),
        }

    def start(self) -> PrivateRabbit:
        (self.base / "rabbitmq.conf").write_text(
            f"listeners.tcp.1 = 127.0.0.1:{self.port}\n"
            f"management.tcp.port = {self.api_port}\n"
            "management.tcp.ip = 127.0.0.1\n"
        )
        (self.base / "enabled_plugins").write_text("[rabbitmq_management].\n")
        # the server drops to the rabbitmq user: it must own its files
        for path in (self.base, *self.base.rglob("*")):
            shutil.chown(path, "rabbitmq", "rabbitmq")
        self.process = subprocess.Popen(
            ["rabbitmq-server"],
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + 90
        while True:
            try:
                if requests.get(f"{self.api}/overview", timeout=2).ok:
                    break
            except requests.RequestException:
                pass
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise RuntimeError(f"private RabbitMQ did not start: see {self.base / 'log'}")
            time.sleep(0.3)
        _wait_port(self.port, 30, "private RabbitMQ")
        return self

    def stop(self) -> None:
        subprocess.run(
            ["rabbitmqctl", "-q", "-n", self.node, "stop"],
            env=self.env,
            capture_output=True,
            timeout=120,
        )
        if self.process is not None:
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.base, ignore_errors=True)

    def restart(self) -> float:
        """Stop the node and start it again on its data; seconds until it answers again."""
        began = time.monotonic()
        self.stop()
        self.start()
        return time.monotonic() - began
