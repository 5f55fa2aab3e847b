"""No product module over 500 lines (the house style: split a module by verb before ~500 lines):
a long module is where a newcomer stops reading and a second responsibility hides. Product code
is every service package, the shared libraries and the ``mpp`` command; migrations are
generated history and are left out."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MAX_LINES = 500
PRODUCT = ("services/*/mpp_*/**/*.py", "libs/*/mpp_*/**/*.py", "cli/mpp_cli/**/*.py")


def product_modules() -> list[Path]:
    found = {path for pattern in PRODUCT for path in ROOT.glob(pattern)}
    return sorted(path for path in found if "migrations" not in path.relative_to(ROOT).parts)


def test_every_service_library_and_the_cli_is_measured():
    measured = {path.relative_to(ROOT).parts[:2] for path in product_modules()}
    packages = {p.relative_to(ROOT).parts[:2] for p in ROOT.glob("services/*/mpp_*/__init__.py")}
    packages |= {p.relative_to(ROOT).parts[:2] for p in ROOT.glob("libs/*/mpp_*/__init__.py")}
    assert {("services", s) for s in ("queue", "payment", "rating", "gateway")} <= packages
    assert {("libs", "chassis"), ("libs", "contracts")} <= packages
    assert packages | {("cli", "mpp_cli")} == measured


def test_no_product_module_is_over_500_lines():
    too_long = {
        str(path.relative_to(ROOT)): lines
        for path in product_modules()
        if (lines := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    assert too_long == {}, f"split these by verb or responsibility: {too_long}"
