"""The local runner explains itself in one line when RabbitMQ is missing (no traceback)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.support.mall import free_port

ROOT = Path(__file__).resolve().parents[2]


def test_runner_without_a_broker_says_what_to_do_in_one_line():
    env = {
        **os.environ,
        "AMQP_URI": f"amqp://guest:guest@127.0.0.1:{free_port()}/",
        "DOCKER_HOST": "unix:///nonexistent/docker.sock",
    }
    result = subprocess.run(
        [sys.executable, "scripts/mall.py"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    lines = [line for line in (result.stdout + result.stderr).splitlines() if line.strip()]
    assert len(lines) == 1, lines
    assert "RabbitMQ does not answer" in lines[0] and "AMQP_URI" in lines[0]
    assert "Traceback" not in result.stderr


def test_a_signal_to_the_runners_group_stops_the_mall_quickly_and_quietly(tmp_path, amqp_uri):
    """`make run`'s group gets SIGTERM (as Ctrl-C's SIGINT reaches the whole foreground group):
    every service stops at once, each told once, so nameko prints no "re-send() an
    already-triggered event" and nothing waits out a kill (it took 61 s and 8 tracebacks)."""
    ports = {name: free_port() for name in ("queue", "payment", "rating", "gateway")}
    env = {
        **os.environ,
        "AMQP_URI": amqp_uri,
        "GATEWAY_URL": f"http://127.0.0.1:{ports['gateway']}",
        **{f"{n.upper()}_HTTP_ADDRESS": f"127.0.0.1:{p}" for n, p in ports.items()},
        **{f"{n.upper()}_DB_URL": f"sqlite:///{tmp_path}/{n}.db" for n in ports},
    }
    log = tmp_path / "run.log"
    with open(log, "wb") as out:
        runner = subprocess.Popen(
            [sys.executable, "scripts/mall.py"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 90
        while "The mall is open" not in log.read_text(errors="replace"):
            assert runner.poll() is None, log.read_text(errors="replace")[-3000:]
            assert time.monotonic() < deadline, "the mall did not open"
            time.sleep(0.2)
        services = _children_of(runner.pid)
        assert len(services) == 4, services
        os.killpg(runner.pid, signal.SIGTERM)
        runner.wait(timeout=10)
        stopped_by = time.monotonic() + 10
        while any(_alive(pid) for pid in services) and time.monotonic() < stopped_by:
            time.sleep(0.1)
        assert not [pid for pid in services if _alive(pid)], "services outlived the runner"
    finally:
        if runner.poll() is None:
            os.killpg(runner.pid, signal.SIGKILL)
    output = log.read_text(errors="replace")
    assert "Traceback" not in output and "already-triggered" not in output, output[-3000:]
    assert "stopping the mall" in output


def _children_of(pid: int) -> list[int]:
    found = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    return [int(line) for line in found.split()]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().split()[2] == "Z")
