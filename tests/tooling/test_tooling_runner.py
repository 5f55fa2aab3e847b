"""The local runner explains itself in one line when RabbitMQ is missing (no traceback)."""

from __future__ import annotations

import os
import subprocess
import sys
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
