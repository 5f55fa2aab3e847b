"""The boundaries of docs/architecture.md, checked by a machine: the import-linter contracts in
pyproject.toml ([tool.importlinter]) hold, so `make test` fails on the first crossing (no service
imports another; domains import no framework, database or chassis; the contracts import no
runtime; the chassis and the mpp command name no service)."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"
SERVICE_PACKAGES = sorted(p.parent.name for p in ROOT.glob("services/*/mpp_*/__init__.py"))


def importlinter() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]


def contract(kind: str, first_source: str) -> dict:
    return next(
        c
        for c in importlinter()["contracts"]
        if c["type"] == kind and (c.get("modules") or c.get("source_modules"))[0] == first_source
    )


def test_every_import_contract_is_kept():
    run = subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0, run.stdout + run.stderr


def test_the_contracts_cover_every_service():
    """A new service is held by the same contracts as the four (or this test names it)."""
    assert set(SERVICE_PACKAGES) <= set(importlinter()["root_packages"])
    assert sorted(contract("independence", "mpp_queue")["modules"]) == SERVICE_PACKAGES
    domains = contract("forbidden", "mpp_queue.domain")["source_modules"]
    assert sorted(domains) == [f"{p}.domain" for p in SERVICE_PACKAGES]
    for source in ("mpp_contracts", "mpp_chassis", "mpp_cli"):
        assert set(SERVICE_PACKAGES) <= set(contract("forbidden", source)["forbidden_modules"])


def test_the_chassis_names_no_service_even_to_import_it_at_run_time():
    """import-linter sees only static imports; ``import_module(f"mpp_{svc}...")`` passed it."""
    naming = re.compile(r"\bmpp_(?:queue|payment|rating|gateway)\b|[\"']mpp_\{")
    found = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for package in (ROOT / "libs/chassis/mpp_chassis", ROOT / "libs/contracts/mpp_contracts")
        for path in sorted(package.rglob("*.py"))
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if naming.search(line)
    ]
    assert found == []
