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
STOP_SECONDS = 4  # then what has not stopped is killed: Ctrl-C ends the mall within 5 s


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


def _die_with_the_runner() -> None:
    """In the child, before exec: Linux sends it SIGTERM if the runner dies (even by SIGKILL),
    so a service in its own session is never left behind; elsewhere nothing is done."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


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
    # Each service runs in a session of its own, so a Ctrl-C or a signal to this process group
    # reaches the runner only and each service is told to stop exactly once: nameko's runner
    # fails ("re-send() an already-triggered event") and hangs when a second stop overlaps.
    processes = {
        name: subprocess.Popen(
            [
                sys.executable,
                "-m",
                "mpp_chassis.run",  # nameko run, without eventlet's deprecation banner
                "--config",
                f"services/{name}/config.yaml",
                f"mpp_{name}.service:{name.capitalize()}Service",
            ],
            cwd=ROOT,
            env=env,
            start_new_session=True,
            preexec_fn=_die_with_the_runner,
        )
        for name in SERVICES
    }
    stopping = []

    def stop(*_):
        if stopping:
            return
        stopping.append(True)
        for process in processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_SECONDS
        for process in processes.values():
            try:
                process.wait(timeout=max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def terminate(*_):
        # make forwards the group's signal too: the second one finds the mall stopping already
        if stopping:
            return
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        print("stopping the mall ...", flush=True)
        stop()
        sys.exit(0)

    signal.signal(signal.SIGTERM, terminate)
    gateway = env.get("GATEWAY_URL", "http://localhost:8000")
    if wait_for(f"{gateway}/readyz", 60):
        print(
            f"The mall is open: API {gateway}/v1 · docs {gateway}/docs (OpenAPI "
            f"{gateway}/openapi.json). Ctrl-C stops it.\n"
            "Seed the demo mall from another terminal: .venv/bin/mpp demo "
            "(or .venv/bin/mpp apply -f examples/mall.yaml)",
            flush=True,
        )
    else:
        print("The mall did not become ready within 60 s; see the logs above.")
    try:
        while all(p.poll() is None for p in processes.values()):
            time.sleep(0.5)
        dead = [name for name, p in processes.items() if p.poll() is not None]
        print(f"service(s) stopped unexpectedly: {', '.join(dead)}; stopping the mall.")
        return 1
    except KeyboardInterrupt:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        print("stopping the mall ...", flush=True)
        return 0
    finally:
        stop()


if __name__ == "__main__":
    sys.exit(main())
