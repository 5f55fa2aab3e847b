"""The images run on ``python:3.11``; the next base image will carry Python 3.12. The mall is
installed here as the images install it (not editable, at the versions of the images' hashed
locks, which constraints.txt pins: the locks themselves are resolved for 3.11) into a Python 3.12
virtualenv, and every service is started from it with ``nameko run`` (``mpp_chassis.run``)
against the real broker: a citizen's whole journey, through all four services, proves they
start, migrate, answer RPC and handle events on 3.12 too.
Python 3.12's venv seeds no setuptools, so nameko's CLI (it imports
``pkg_resources``) starts only because the chassis declares setuptools.

CI (``.ci/run``) sets ``MPP_REQUIRE_PYTHON_NEXT=1``: there, a missing Python 3.12 fails the test.
On a laptop without one, it is skipped with the reason."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import requests

from bench.floor import bearer, open_floor
from tests.support.infra import wait_until

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
VERSION = (3, 12)
PACKAGES = (
    "libs/contracts",
    "libs/chassis",
    *(f"services/{s}" for s in ("queue", "payment")),
    "services/rating",
    "services/gateway",
)


def interpreter() -> str | None:
    """A Python 3.12: ``PYTHON_NEXT``, ``python3.12`` on PATH, or pyenv's (a pyenv shim on PATH
    answers even when its version is not selected, so each candidate is asked its version)."""
    name = "python{}.{}".format(*VERSION)
    candidates = [os.environ.get("PYTHON_NEXT"), shutil.which(name)]
    candidates += sorted(glob.glob(os.path.expanduser(f"~/.pyenv/versions/3.12*/bin/{name}")))
    for candidate in filter(None, candidates):
        probe = subprocess.run(
            [candidate, "-c", "import sys; print(*sys.version_info[:2])"],
            capture_output=True,
            text=True,
        )
        if probe.returncode == 0 and tuple(map(int, probe.stdout.split())) == VERSION:
            return candidate
    return None


@pytest.fixture(scope="module")
def python312(tmp_path_factory) -> str:
    found = interpreter()
    if found is None:
        message = "no Python 3.12 here (PYTHON_NEXT, python3.12, ~/.pyenv/versions/3.12*)"
        if os.environ.get("MPP_REQUIRE_PYTHON_NEXT") == "1":
            pytest.fail(message)
        pytest.skip(message)
    work = tmp_path_factory.mktemp("py312")
    # a copy: building a package in place leaves build/ beside its sources in the checkout
    for package in PACKAGES:
        shutil.copytree(
            ROOT / package,
            work / package,
            ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"),
        )
    shutil.copy(ROOT / "constraints.txt", work)
    venv = work / "venv"
    subprocess.run([found, "-m", "venv", str(venv)], check=True)
    python = str(venv / "bin" / "python")
    # as the images build the project's packages: with the pinned setuptools, no build isolation
    # (an isolated build made a fresh environment per package: ~7 s of this fixture's ~22 s)
    for args in (
        ("setuptools",),
        ("--no-build-isolation", *PACKAGES),
    ):
        install = subprocess.run(
            [python, "-m", "pip", "install", "-q", "-c", "constraints.txt", *args],
            cwd=work,
            capture_output=True,
            text=True,
        )
        assert install.returncode == 0, install.stderr[-3000:]
    return python


def test_every_service_runs_a_journey_on_python_312(python312, mall_factory):
    mall = mall_factory("sqlite", python=python312)
    for process in mall.processes:  # each service really runs on the 3.12 venv's interpreter
        exe = os.path.realpath(f"/proc/{process.process.pid}/exe")
        assert Path(exe).name.startswith("python3.12"), (process.name, exe)

    floor = open_floor(mall.url)
    service = floor.add_service("PAID", "P", fee_idr=20000)
    (counter,) = floor.counters["PAID"]
    ticket = requests.post(f"{mall.url}/v1/tickets", json={"service_id": service}, timeout=10)
    assert ticket.status_code == 201, ticket.text
    ticket = ticket.json()
    called = requests.post(
        f"{mall.url}/v1/counters/{counter}/call-next", headers=floor.officer, timeout=10
    )
    assert called.status_code == 200 and called.json()["id"] == ticket["id"], called.text
    for action in ("start", "complete"):
        answer = requests.post(
            f"{mall.url}/v1/tickets/{ticket['id']}/{action}", headers=floor.officer, timeout=10
        )
        assert answer.status_code == 200, answer.text

    code = {"code": ticket["access_code"]}
    invoice = wait_until(  # the payment service handled ticket_completed
        lambda: (
            (r := requests.get(f"{mall.url}/v1/tickets/{ticket['id']}/payment", params=code)).ok
            and r.json()
        ),
        message="invoice opened on 3.12",
    )
    assert invoice["amount_idr"] == 20000
    paid = requests.post(
        f"{mall.url}/v1/simulator/payments/{invoice['id']}/pay",
        headers=bearer(floor.admin_key),
        timeout=10,
    )
    assert paid.status_code == 202, paid.text
    wait_until(  # the simulator's signed webhook came back through the gateway
        lambda: requests.get(f"{mall.url}/v1/payments/{invoice['id']}").json()["status"] == "paid",
        message="paid on 3.12",
    )
    token = wait_until(  # the rating service handled the payment's event
        lambda: (
            requests.get(f"{mall.url}/v1/tickets/{ticket['id']}", params=code).json().get("rating")
            or {}
        ).get("token"),
        message="rating invitation on 3.12",
    )
    rated = requests.post(
        f"{mall.url}/v1/ratings",
        json={"token": token, "stars": 5, "answers": {f"U{i}": 4 for i in range(1, 10)}},
        timeout=10,
    )
    assert rated.status_code == 201, rated.text
