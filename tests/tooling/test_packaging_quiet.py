"""Installing the packages editable, as `make run` does, prints no setuptools warning
(issue 18, item 4: BuildBackendWarning "Editable installation" for each package)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = sorted(str(p.parent.relative_to(ROOT)) for p in ROOT.glob("*/*/pyproject.toml")) + [
    "cli"
]


def test_every_package_declares_the_plain_layout():
    for package in PACKAGES:
        text = (ROOT / package / "pyproject.toml").read_text()
        assert 'package-dir = {"" = "."}' in text, package


def test_an_editable_install_prints_no_build_backend_warning(tmp_path):
    venv = tmp_path / "venv"
    # no pip of its own (seeding one took ~6 s): the project's pip (make upgrades it; older ones
    # do not show the backend's warnings) installs into it, -q as make runs it
    subprocess.run(
        [sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120
    )
    target = str(venv / "bin" / "python")
    args = [sys.executable, "-m", "pip", "--python", target, "install", "-q", "--no-deps"]
    for package in PACKAGES:
        args += ["-e", str(ROOT / package)]
    result = subprocess.run(args, capture_output=True, text=True, timeout=280)
    assert result.returncode == 0, result.stdout + result.stderr
    output = result.stdout + result.stderr
    assert "BuildBackendWarning" not in output and "Editable installation" not in output
