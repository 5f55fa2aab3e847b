"""deploy/pin_images.py: the third-party images of the Kubernetes base (Redis, its exporter) are
pinned by digest in an overlay's ``images:``. No registry here: the digests come from a map
(``--digests``) or from stand-in ``crane`` and ``skopeo`` commands, and the result is rendered
by ``kubectl kustomize`` on a copy of deploy/k8s."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.deploy.conftest import DEPLOY, kustomize

SCRIPT = DEPLOY / "pin_images.py"
FAKE = {"redis": "sha256:" + "1" * 64, "oliver006/redis_exporter": "sha256:" + "2" * 64}


def images(objects: list[dict]) -> dict[str, list[str]]:
    """``object name -> its containers' images`` of the rendered pod templates."""
    found = {}
    for obj in objects:
        pod = obj.get("spec", {}).get("template", {}).get("spec")
        if pod:
            found[f"{obj['kind']}/{obj['metadata']['name']}"] = [
                c["image"] for c in pod["containers"]
            ]
    return found


def without_images(objects: list[dict]) -> str:
    text = json.dumps(objects, sort_keys=True)
    for image in {i for names in images(objects).values() for i in names}:
        text = text.replace(json.dumps(image), '"IMAGE"')
    return text


@pytest.fixture
def k8s(tmp_path) -> Path:
    copy = tmp_path / "k8s"
    shutil.copytree(DEPLOY / "k8s", copy)
    return copy


def pin(overlay: Path, *args: str, path: str | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": path or os.environ["PATH"]}
    return subprocess.run(
        [sys.executable, str(SCRIPT), "--overlay", str(overlay), *args],
        capture_output=True,
        text=True,
        env=env,
    )


def digest_map(tmp_path: Path, digests: dict[str, str]) -> str:
    """A ``--digests`` file for the base's images as it names them (name:tag)."""
    spec = importlib.util.spec_from_file_location("pin_images", DEPLOY / "pin_images.py")
    pin_images = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(pin_images)  # a script beside the manifests, not a package
    found = {
        image: digests[pin_images.split(image)[0]] for image in pin_images.third_party_images()
    }
    path = tmp_path / "digests.json"
    path.write_text(json.dumps(found))
    return str(path)


def test_the_base_third_party_images_are_pinned_in_the_overlay_by_digest(k8s, tmp_path):
    overlay = k8s / "overlays" / "production"
    before = kustomize(overlay)
    result = pin(overlay, "--digests", digest_map(tmp_path, FAKE))
    assert result.returncode == 0, result.stderr
    after = kustomize(overlay)
    redis = images(after)["Deployment/redis"]
    assert redis == [f"{name}@{digest}" for name, digest in FAKE.items()], redis
    # the mall's images keep their digests; nothing but the two images changed
    for name, containers in images(before).items():
        if name != "Deployment/redis":
            assert images(after)[name] == containers, name
    assert without_images(after) == without_images(before)
    text = (overlay / "kustomization.yaml").read_text()
    original = (DEPLOY / "k8s" / "overlays" / "production" / "kustomization.yaml").read_text()
    assert text.startswith(original), "comments and the mall's entries stay as they were"


def test_a_second_run_replaces_its_entries_instead_of_adding_more(k8s, tmp_path):
    overlay = k8s / "overlays" / "production"
    assert pin(overlay, "--digests", digest_map(tmp_path, FAKE)).returncode == 0
    once = (overlay / "kustomization.yaml").read_text()
    assert pin(overlay, "--digests", digest_map(tmp_path, FAKE)).returncode == 0
    assert (overlay / "kustomization.yaml").read_text() == once
    newer = {name: "sha256:" + "3" * 64 for name in FAKE}
    assert pin(overlay, "--digests", digest_map(tmp_path, newer)).returncode == 0
    text = (overlay / "kustomization.yaml").read_text()
    assert "1" * 64 not in text and text.count("3" * 64) == 2
    assert images(kustomize(overlay))["Deployment/redis"][0] == "redis@sha256:" + "3" * 64


def test_a_missing_or_malformed_digest_changes_nothing(k8s, tmp_path):
    overlay = k8s / "overlays" / "production"
    original = (overlay / "kustomization.yaml").read_text()
    partial = tmp_path / "partial.json"
    partial.write_text(json.dumps({"redis:7.4.1-bookworm": FAKE["redis"]}))
    result = pin(overlay, "--digests", str(partial))
    assert result.returncode != 0 and "redis_exporter" in result.stderr
    zeros = {name: "sha256:" + "0" * 64 for name in FAKE}
    result = pin(overlay, "--digests", digest_map(tmp_path, zeros))
    assert result.returncode != 0 and "not a sha256 digest" in result.stderr
    assert (overlay / "kustomization.yaml").read_text() == original


def stand_in(bin_dir: Path, name: str, script: str) -> None:
    tool = bin_dir / name
    tool.write_text(f'#!/bin/sh\necho "$@" >> {bin_dir}/calls\n{script}\n')
    tool.chmod(0o755)


def test_without_a_map_it_asks_crane_or_else_skopeo(k8s, tmp_path):
    overlay = k8s / "overlays" / "production"
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    python = str(Path(sys.executable).parent)
    path = f"{bin_dir}:{python}:/usr/bin:/bin"
    if shutil.which("crane", path=path) or shutil.which("skopeo", path=path):
        pytest.skip("a real crane or skopeo is installed here")
    assert "crane or skopeo" in pin(overlay, path=path).stderr

    manifest = b'{"schemaVersion":2,"manifests":[]}'
    (bin_dir / "manifest.json").write_bytes(manifest)
    stand_in(bin_dir, "skopeo", f"cat {bin_dir}/manifest.json")
    result = pin(overlay, path=path)
    assert result.returncode == 0, result.stderr
    expected = "sha256:" + hashlib.sha256(manifest).hexdigest()
    assert images(kustomize(overlay))["Deployment/redis"][0] == f"redis@{expected}"
    calls = (bin_dir / "calls").read_text().splitlines()
    assert "inspect --raw docker://redis:7.4.1-bookworm" in calls, calls

    stand_in(bin_dir, "crane", "echo sha256:" + "4" * 64)
    result = pin(overlay, path=path)
    assert result.returncode == 0, result.stderr
    assert images(kustomize(overlay))["Deployment/redis"][0] == "redis@sha256:" + "4" * 64
    assert "digest redis:7.4.1-bookworm" in (bin_dir / "calls").read_text().splitlines()
