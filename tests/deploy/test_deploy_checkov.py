"""Checkov, the maintained policy scanner, on what would really be applied: the Kubernetes
overlays as ``kubectl kustomize`` renders them, and the Dockerfile. Every finding is fixed or
skipped in deploy/checkov.yaml with its reason; any other fails the suite.

Checkov brings a large tree of dependencies, so it lives in its own virtualenv in the user's
cache (tests/deploy/conftest.py, ``tool_venv``), made on first use (~65 s) and kept for the next
runs, of this checkout or a fresh clone."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.deploy.conftest import DEPLOY, kubectl, tool_venv

CHECKOV_VERSION = "3.3.30"
OVERLAYS = ("staging", "production")


@pytest.fixture(scope="module")
def checkov() -> str:
    return str(tool_venv(f"checkov=={CHECKOV_VERSION}") / "checkov")


def scan(checkov: str, *files: Path, config: Path | None = DEPLOY / "checkov.yaml") -> dict:
    """Checkov's findings on ``files``: {framework: [failed check ids with their resource]}."""
    command = [checkov, "--output", "json", "--framework", "kubernetes", "dockerfile"]
    command += ["--config-file", str(config)] if config else ["--skip-download"]
    for path in files:
        command += ["-f", str(path)]
    result = subprocess.run(
        command, capture_output=True, text=True, env={"BC_SKIP_MAPPING": "TRUE", "PATH": ""}
    )
    assert result.stdout, result.stderr[-3000:]
    reports = json.loads(result.stdout)
    reports = reports if isinstance(reports, list) else [reports]
    failed = {
        report["check_type"]: sorted(
            f"{check['check_id']} {check['resource']}"
            for check in report["results"]["failed_checks"]
        )
        for report in reports
    }
    assert set(failed) == {"kubernetes", "dockerfile"}, result.stdout[-2000:]
    return failed


@pytest.fixture(scope="module")
def rendered(tmp_path_factory) -> list[Path]:
    out = tmp_path_factory.mktemp("rendered")
    files = []
    for overlay in OVERLAYS:
        text = subprocess.run(
            [kubectl(), "kustomize", str(DEPLOY / "k8s" / "overlays" / overlay)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        path = out / f"{overlay}.yaml"
        path.write_text(text)
        files.append(path)
    return files


def test_checkov_finds_nothing_that_is_not_fixed_or_explained(checkov, rendered):
    failed = scan(checkov, *rendered, DEPLOY / "docker" / "Dockerfile")
    assert failed == {"kubernetes": [], "dockerfile": []}


def test_checkov_would_catch_a_privileged_container(checkov, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "apiVersion: v1\nkind: Pod\nmetadata: {name: bad, namespace: mpp}\n"
        "spec:\n  containers:\n  - name: app\n    image: mpp-queue@sha256:" + "0" * 64 + "\n"
        "    securityContext: {privileged: true}\n"
    )
    failed = scan(checkov, bad, DEPLOY / "docker" / "Dockerfile")
    assert any(f.startswith("CKV_K8S_16 ") for f in failed["kubernetes"]), failed  # privileged
