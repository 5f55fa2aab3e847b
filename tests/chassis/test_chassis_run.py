"""``python -m mpp_chassis.run`` (``nameko run`` for every service of the mall) keeps kombu from
searching ``sys.path`` for librabbitmq on every connection it builds (issue 20)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

PROBE = textwrap.dedent(
    """
    import importlib.machinery, sys
    from mpp_chassis import run
    try:
        run.main(["--help"])  # the service runner, as each service starts (help: it exits)
    except SystemExit:
        pass
    searched = []
    find_spec = importlib.machinery.PathFinder.find_spec

    def spy(name, *args, **kwargs):
        searched.append(name)
        return find_spec(name, *args, **kwargs)

    importlib.machinery.PathFinder.find_spec = spy
    from kombu import Connection
    for _ in range(20):  # nameko builds one per publish: each RPC request and reply
        conn = Connection("amqp://guest:guest@127.0.0.1:5672//")
    print(searched.count("librabbitmq"), conn.transport.driver_name)
    """
)


def test_a_service_process_builds_amqp_connections_without_searching_for_librabbitmq():
    """kombu tries ``import librabbitmq`` for each ``amqp://`` Connection; a failed import is
    not remembered, so each one searched every sys.path entry (~0.3 ms, over half the CPU of an
    RPC reply's publish). In a service process the probe fails at once, and the transport is
    py-amqp, as before."""
    out = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, check=True, timeout=60
    ).stdout.split()
    assert out[-2:] == ["0", "py-amqp"], out
