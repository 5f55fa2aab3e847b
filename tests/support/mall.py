"""Start the mall's services as real ``nameko run`` processes for end-to-end tests."""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[2]
SERVICES = ("queue", "payment", "rating", "gateway")
MALL_ADMIN_KEY = "e2e-mall-admin-key"


_HANDED_OUT: set[int] = set()


def free_port() -> int:
    """A port nothing listens on now and this test process has not handed out before: a mall
    asks for four before any of its processes binds one, so the kernel could offer the same
    free port twice (a gateway and its queue were once given one port)."""
    while True:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        if port not in _HANDED_OUT:
            _HANDED_OUT.add(port)
            return port


def migrate(urls: dict[str, str], python: str = sys.executable, root: Path = ROOT) -> None:
    """Every service's database in ``urls`` brought to head by one interpreter (one process each
    cost ~0.8 s of start-up and imports apiece, four times a mall)."""
    subprocess.run(
        [
            python,
            "-c",
            "from mpp_chassis.migrate import upgrade\n"
            f"for service, url in {urls!r}.items():\n    upgrade(service, url)",
        ],
        cwd=root,
        check=True,
        capture_output=True,
    )


class MigratedTemplates:
    """Each service's database migrated once per test session, then copied for every further
    mall: a SQLite file copied, a PostgreSQL database made with ``CREATE DATABASE … TEMPLATE``.
    Migrating four databases took ~1–3 s a mall; a copy takes milliseconds. What a copy holds is
    exactly what the same migrations made (tests/chassis/test_chassis_migrate.py tests those)."""

    def __init__(self, workdir: Path, admin_url: str | None = None) -> None:
        self.workdir = workdir
        self.admin_url = admin_url  # PostgreSQL's maintenance database (None: SQLite only)
        self.made: dict[tuple, str] = {}  # (python, root, service, backend) -> template
        self.databases: list[str] = []  # PostgreSQL templates, dropped by close()

    def backend(self, url: str) -> str | None:
        if url.startswith("sqlite:////") and not Path(url.removeprefix("sqlite:///")).exists():
            return "sqlite"  # a file not yet made
        if self.admin_url and url.rsplit("/", 1)[0] == self.admin_url.rsplit("/", 1)[0]:
            return "postgres"  # a database on this server, just made empty by the test
        return None

    def fill(self, urls: dict[str, str], python: str, root: Path) -> dict[str, str]:
        """Copies each migrated template into ``urls``; returns the URLs it could not fill."""
        backends = {service: self.backend(url) for service, url in urls.items()}
        missing = {
            service: self.new_template(service, backend)
            for service, backend in backends.items()
            if backend and (python, str(root), service, backend) not in self.made
        }
        if missing:
            migrate(missing, python, root)
            for service, template in missing.items():
                self.made[(python, str(root), service, backends[service])] = template
        for service, url in urls.items():
            if backends[service]:
                self.copy(self.made[(python, str(root), service, backends[service])], url)
        return {service: url for service, url in urls.items() if not backends[service]}

    def new_template(self, service: str, backend: str) -> str:
        if backend == "sqlite":
            return f"sqlite:///{self.workdir}/{service}-{len(self.made)}.db"
        from tests.support import infra

        url = infra.create_database(f"mpp_template_{service}")
        self.databases.append(url)
        return url

    def copy(self, template: str, url: str) -> None:
        if url.startswith("sqlite:"):
            # SQLite's backup API: a copy that includes what a write-ahead log still holds
            source = sqlite3.connect(template.removeprefix("sqlite:///"))
            target = sqlite3.connect(url.removeprefix("sqlite:///"))
            with target:
                source.backup(target)
            source.close()
            target.close()
            return
        import sqlalchemy as sa

        engine = sa.create_engine(self.admin_url, isolation_level="AUTOCOMMIT")
        name, source = url.rsplit("/", 1)[1], template.rsplit("/", 1)[1]
        with engine.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            conn.execute(sa.text(f'CREATE DATABASE "{name}" TEMPLATE "{source}"'))
        engine.dispose()

    def close(self) -> None:
        from tests.support import infra

        for url in self.databases:
            infra.drop_database(url)


@dataclass
class ServiceProcess:
    name: str
    port: int
    env: dict
    log_path: Path
    python: str = sys.executable  # the interpreter whose installed packages run the service
    root: Path = ROOT  # the checkout whose config files it runs with
    process: subprocess.Popen | None = None

    def start(self) -> None:
        self.log = open(self.log_path, "ab")
        self.process = subprocess.Popen(
            [
                self.python,
                "-m",
                "mpp_chassis.run",  # nameko run, without eventlet's deprecation banner
                "--config",
                f"services/{self.name}/config.yaml",
                f"mpp_{self.name}.service:{self.name.capitalize()}Service",
            ],
            cwd=self.root,
            env=self.env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    def wait_healthy(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited: see {self.log_path}")
            try:
                if requests.get(f"http://127.0.0.1:{self.port}/healthz", timeout=1).ok:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"{self.name} did not become healthy: see {self.log_path}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20) -> None:
        self.send_stop(sig)
        self.wait_stopped(timeout)

    def send_stop(self, sig: int = signal.SIGTERM) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(sig)

    def wait_stopped(self, timeout: float = 20) -> None:
        if self.process:
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if getattr(self, "log", None):
            self.log.close()

    def kill(self) -> None:
        self.stop(signal.SIGKILL)


@dataclass
class Mall:
    """Four services (optionally several replicas of one) sharing one broker vhost."""

    amqp_uri: str
    db_urls: dict[str, str]
    log_dir: Path
    extra_env: dict = field(default_factory=dict)
    processes: list[ServiceProcess] = field(default_factory=list)
    python: str = sys.executable  # another venv's python runs the mall on its interpreter
    root: Path = ROOT  # … with that checkout's config files (bench/levers.py: an older commit)
    templates: MigratedTemplates | None = None  # copies migrated databases instead (tests)

    def __post_init__(self) -> None:
        self.gateway_port = free_port()
        self.url = f"http://127.0.0.1:{self.gateway_port}"
        # rate-limit counters in Redis are per mall, so parallel test malls never share them
        self.redis_prefix = f"mpp-test-{self.gateway_port}-{time.time_ns()}"

    def env_for(self, name: str, port: int) -> dict:
        env = {k: v for k, v in os.environ.items() if not k.endswith("_DB_URL")}
        env.update(
            {
                "AMQP_URI": self.amqp_uri,
                "MALL_ADMIN_KEY": MALL_ADMIN_KEY,
                "RPC_TIMEOUT": "5",
                "OUTBOX_POLL_SECONDS": "0.5",
                "SIMULATOR_WEBHOOK_URL": f"{self.url}/v1/webhooks/payments/simulator",
                f"{name.upper()}_HTTP_ADDRESS": f"127.0.0.1:{port}",
                f"{name.upper()}_DB_URL": self.db_urls[name],
                "LOG_LEVEL": "INFO",
                "REDIS_PREFIX": self.redis_prefix,
                # suites send many keyless and revoked-key requests from one address on purpose;
                # tests/gateway/interface/test_gateway_rate_limits.py tests this limit
                "RATE_LIMIT_AUTH_FAILURES_PER_MINUTE": "1000000",
            }
        )
        env.update(self.extra_env)
        return env

    def start_service(self, name: str, *, port: int | None = None) -> ServiceProcess:
        port = port or (
            self.gateway_port
            if name == "gateway" and not any(p.name == "gateway" for p in self.processes)
            else free_port()
        )
        index = sum(p.name == name for p in self.processes)
        proc = ServiceProcess(
            name,
            port,
            self.env_for(name, port),
            self.log_dir / f"{name}-{index}.log",
            python=self.python,
            root=self.root,
        )
        proc.start()
        self.processes.append(proc)
        return proc

    def start(self) -> Mall:
        urls = {name: self.db_urls[name] for name in SERVICES}
        if self.templates:
            urls = self.templates.fill(urls, self.python, self.root)
        if urls:
            migrate(urls, self.python, self.root)
        started = [self.start_service(name) for name in SERVICES]
        for proc in started:
            proc.wait_healthy()
        self.wait_ready()
        return self

    def wait_ready(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if requests.get(f"{self.url}/readyz", timeout=6).ok:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.3)
        raise RuntimeError("mall not ready")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        """Every process gets SIGTERM at once and stops gracefully in parallel (one by one, a
        mall took ~10 s to stop: each nameko container needs ~2 s to wind down its consumers).
        ``SIGKILL`` ends them at once: a test's teardown, once nothing more is asserted."""
        for proc in reversed(self.processes):
            proc.send_stop(sig)
        for proc in reversed(self.processes):
            proc.wait_stopped()

    def logs(self) -> str:
        return "\n".join(
            p.log_path.read_text(errors="replace") for p in self.processes if p.log_path.exists()
        )
