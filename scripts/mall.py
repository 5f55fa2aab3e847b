"""Run the whole mall locally without Docker: migrate, start the four services, stop on Ctrl-C.

    python scripts/mall.py            # what `make run` does

Each service is a separate ``nameko run`` process against RabbitMQ at ``AMQP_URI`` and its own
SQLite file under ``var/`` (or the database named by ``<SERVICE>_DB_URL``). If RabbitMQ does not
answer and a Docker engine does, a throwaway RabbitMQ container is started through the Docker SDK.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parent.parent
SERVICES = ("queue", "payment", "rating", "gateway")
DEFAULT_AMQP = "amqp://guest:guest@localhost:5672/"


def broker_answers(uri: str, timeout: float = 2.0) -> bool:
    parsed = urlparse(uri)
    try:
        with socket.create_connection(
            (parsed.hostname or "localhost", parsed.port or 5672), timeout=timeout
        ):
            return True
    except OSError:
        return False


def start_rabbitmq_container(uri: str) -> bool:
    """Start ``rabbitmq:3.13-management`` through the Docker SDK when an engine runs."""
    try:
        import docker

        client = docker.from_env()
        client.ping()
    except Exception:
        return False
    port = urlparse(uri).port or 5672
    print(f"RabbitMQ is not answering; starting a RabbitMQ container on port {port} ...")
    client.containers.run(
        "rabbitmq:3.13-management",
        name="mpp-rabbitmq",
        detach=True,
        remove=True,
        ports={"5672/tcp": port, "15672/tcp": 15672},
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if broker_answers(uri):
            time.sleep(3)  # the port opens a moment before the broker accepts logins
            return True
        time.sleep(1)
    return False


def wait_for(url: str, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return True
        except OSError:
            pass
        time.sleep(0.5)
    return False


def main() -> int:
    env = dict(os.environ)
    uri = env.setdefault("AMQP_URI", DEFAULT_AMQP)
    if not broker_answers(uri) and not start_rabbitmq_container(uri):
        print(
            f"RabbitMQ does not answer at {uri} and no Docker engine is available: start it "
            "(e.g. `rabbitmq-server -detached`) or set AMQP_URI, then run `make run` again."
        )
        return 1
    (ROOT / "var").mkdir(exist_ok=True)
    subprocess.run(
        [sys.executable, "-m", "mpp_chassis.migrate", *SERVICES], cwd=ROOT, env=env, check=True
    )
    bin_dir = Path(sys.executable).parent
    processes = {
        name: subprocess.Popen(
            [
                str(bin_dir / "nameko"),
                "run",
                "--config",
                f"services/{name}/config.yaml",
                f"mpp_{name}.service:{name.capitalize()}Service",
            ],
            cwd=ROOT,
            env=env,
        )
        for name in SERVICES
    }

    def stop(*_):
        for process in processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in processes.values():
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()

    signal.signal(signal.SIGTERM, lambda *_: (stop(), sys.exit(0)))
    gateway = env.get("GATEWAY_URL", "http://localhost:8000")
    if wait_for(f"{gateway}/readyz", 60):
        print(f"The mall is open: {gateway} (API docs: {gateway}/docs). Ctrl-C stops it.")
    else:
        print("The mall did not become ready within 60 s; see the logs above.")
    try:
        while all(p.poll() is None for p in processes.values()):
            time.sleep(0.5)
        dead = [name for name, p in processes.items() if p.poll() is not None]
        print(f"service(s) stopped unexpectedly: {', '.join(dead)}; stopping the mall.")
        return 1
    except KeyboardInterrupt:
        print("stopping the mall ...")
        return 0
    finally:
        stop()


if __name__ == "__main__":
    sys.exit(main())
