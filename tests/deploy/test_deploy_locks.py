"""The images' hashed locks (issue 21): ``make lock`` resolves, with uv, one lock per service
image, ``deploy/locks/<service>.txt``, holding every third-party distribution that image installs
with its sha256 hashes (the Dockerfile installs it with ``--require-hashes``), at the versions
``constraints.txt`` pins for the dev virtualenv: what the tests ran is what the images run.

Whether a lock really installs needs PyPI (pip downloads each file to check its hash: about a
minute for the four), so it is not run here; it was checked by hand (docs/operations.md,
"Supply chain")."""

from __future__ import annotations

import re
import subprocess
import tomllib
from importlib import metadata

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.deploy.conftest import DEPLOY, ROOT, SERVICES

LOCKS = DEPLOY / "locks"
DOCKERFILE = DEPLOY / "docker" / "Dockerfile"
_PIN = re.compile(r"([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)")
_HASH = re.compile(r"--hash=sha256:[0-9a-f]{64}")


def entries(text: str) -> list[str]:
    """A requirements file's entries: continuation lines joined, comments and blanks dropped."""
    joined = re.sub(r"\\\n", " ", text)
    return [
        line.partition(" #")[0].strip()
        for line in joined.splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]


def unhashed(text: str) -> list[str]:
    """Entries ``pip install --require-hashes`` would refuse or that a lock must not hold: not
    an exact ``name==version``, no sha256 hash, or anything but hashes after the pin."""
    bad = []
    for entry in entries(text):
        pin, *options = entry.split()
        if not _PIN.fullmatch(pin) or not options or not all(map(_HASH.fullmatch, options)):
            bad.append(entry)
    return bad


def pins(text: str) -> dict[str, str]:
    """``normalized name -> version`` of a requirements file's exact pins."""
    found = (_PIN.match(entry) for entry in entries(text))
    return {canonicalize_name(m.group(1)): m.group(2) for m in found if m}


def image_python() -> str:
    """The images' Python version, from the Dockerfile's base image (``python:3.11.14-…``)."""
    return re.search(r"ARG PYTHON_IMAGE=python:([0-9.]+)-", DOCKERFILE.read_text()).group(1)


def local_packages() -> dict[str, list[str]]:
    """The project's own distributions (``libs/*``, ``services/*``): name -> dependencies."""
    found = {}
    for path in [*ROOT.glob("libs/*/pyproject.toml"), *ROOT.glob("services/*/pyproject.toml")]:
        project = tomllib.loads(path.read_text())["project"]
        found[canonicalize_name(project["name"])] = project.get("dependencies", [])
    return found


def runtime_closure(service: str) -> set[str]:
    """Every third-party distribution the ``service`` image needs: what its pyproject, the
    chassis's and the contracts' declare, then what those declare (from the dev virtualenv's
    installed metadata, at constraints.txt's versions), markers evaluated for the image."""
    environment = {
        "python_full_version": image_python(),
        "python_version": ".".join(image_python().split(".")[:2]),
        "sys_platform": "linux",
        "platform_system": "Linux",
        "os_name": "posix",
    }
    local = local_packages()
    pinned = pins((ROOT / "constraints.txt").read_text())
    seen: set[str] = set()
    todo = [(Requirement(f"mpp-{service}"), "")]
    while todo:
        requirement, extra = todo.pop()
        marker = requirement.marker
        if marker and not marker.evaluate({**environment, "extra": extra}):
            continue
        name = canonicalize_name(requirement.name)
        if name in local:
            todo += [(Requirement(line), "") for line in local[name]]
            continue
        key = (name, *sorted(requirement.extras))
        if key in seen:
            continue
        seen.add(key)
        installed = metadata.version(name)
        assert installed == pinned.get(name), (
            f"{name} {installed} is installed, constraints.txt pins {pinned.get(name)}: "
            "run `make .venv/bin/.installed`"
        )
        for line in metadata.requires(name) or []:
            for wanted in ("", *requirement.extras):
                todo.append((Requirement(line), wanted))
    return {key[0] for key in seen}


@pytest.mark.parametrize("service", SERVICES)
def test_every_lock_entry_is_pinned_and_hashed(service):
    text = (LOCKS / f"{service}.txt").read_text()
    assert pins(text), f"deploy/locks/{service}.txt is empty: run `make lock`"
    assert unhashed(text) == []
    assert "make lock" in text.splitlines()[1], "a lock says how it is made"


def test_a_hashless_or_loose_entry_is_caught():
    good = "kombu==5.7.0 \\\n    --hash=sha256:" + "a" * 64 + "\n    # via nameko\n"
    assert unhashed(good) == [] and pins(good) == {"kombu": "5.7.0"}
    assert unhashed(good + "vine==5.1.0\n") == ["vine==5.1.0"]
    assert unhashed(good + "vine>=5 --hash=sha256:" + "b" * 64 + "\n")
    assert unhashed(good + "-e ./libs/chassis\n")
    assert unhashed(good + "vine==5.1.0 --hash=md5:abc\n")


@pytest.mark.parametrize("service", SERVICES)
def test_each_lock_pins_the_versions_constraints_pins(service):
    """The dev virtualenv (constraints.txt) and the image (its lock) run the same releases."""
    constraints = pins((ROOT / "constraints.txt").read_text())
    lock = pins((LOCKS / f"{service}.txt").read_text())
    differ = {
        name: (v, constraints.get(name)) for name, v in lock.items() if constraints.get(name) != v
    }
    assert differ == {}, "lock vs constraints.txt: run `make lock`"


@pytest.mark.parametrize("service", SERVICES)
def test_each_lock_holds_exactly_what_its_service_declares(service):
    """Up to date with the pyprojects: a dependency added to a service, the chassis or the
    contracts without `make lock` is missing here (and pip --require-hashes would refuse the
    build); one dropped, or another service's, is extra; no project package is in a lock."""
    lock = set(pins((LOCKS / f"{service}.txt").read_text()))
    needed = runtime_closure(service)
    assert not lock & set(local_packages()), "the project's own packages install --no-deps"
    assert sorted(needed - lock) == [], f"missing from deploy/locks/{service}.txt: make lock"
    assert sorted(lock - needed) == [], f"not needed by {service}: make lock"


def test_the_closure_follows_declarations_and_markers():
    """What the check above compares with: the gateway needs redis, the queue does not; the
    chassis's setuptools reaches every image; kombu's Windows-only tzdata and redis's
    async-timeout (Python before 3.11.3) reach none, as uv left them out for the image."""
    gateway, queue = runtime_closure("gateway"), runtime_closure("queue")
    assert "redis" in gateway and "redis" not in queue
    assert {"setuptools", "nameko", "kombu", "marshmallow"} <= queue
    assert any(r.startswith("tzdata") for r in metadata.requires("kombu"))
    assert any(r.startswith("async-timeout") for r in metadata.requires("redis"))
    assert "tzdata" not in gateway and "async-timeout" not in gateway


def test_make_lock_writes_every_image_lock_with_a_pinned_uv():
    """`make lock` (dry run): uv, pinned by constraints.txt, resolves for the Dockerfile's
    Python, with hashes, one lock per service image, against constraints.txt."""
    dry = subprocess.run(
        ["make", "-n", "-o", ".venv/bin/.installed", "lock"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert dry.returncode == 0, dry.stderr
    compiles = [line for line in dry.stdout.splitlines() if "uv pip compile" in line]
    assert all(f"--python-version {image_python()} " in line for line in compiles), compiles
    assert any(line.endswith("-o constraints.txt") for line in compiles), compiles
    (hashed,) = [line for line in compiles if "--generate-hashes" in line]
    assert "-c constraints.txt" in hashed and "-o deploy/locks/$s.txt" in hashed, hashed
    loop = re.search(r"for s in ([^;]+);", dry.stdout).group(1).split()
    assert sorted(loop) == sorted(SERVICES), loop
    assert "uv" in [e.split()[0] for e in entries((ROOT / "requirements-dev.txt").read_text())]
    assert "uv" in pins((ROOT / "constraints.txt").read_text())
