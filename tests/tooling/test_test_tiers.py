"""Every service is tested in the same five tiers (docs/testing.md): a newcomer finds a service's
use-case tests, or its integration tests, where they find every other service's. A service
without a tier directory holding at least one test fails here, and so does a tier the document
no longer describes."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TIERS = ("unit", "usecases", "interface", "integration", "e2e")
SERVICES = sorted(p.parents[1].name for p in ROOT.glob("services/*/mpp_*/__init__.py"))
TEST_FUNCTION = re.compile(r"^(?:async )?def test_\w+\(", re.M)


def test_the_four_services_are_found():
    assert {"queue", "payment", "rating", "gateway"} <= set(SERVICES)


@pytest.mark.parametrize("service", SERVICES)
def test_every_service_has_every_tier_with_a_test(service):
    missing = []
    for tier in TIERS:
        folder = ROOT / "tests" / service / tier
        tests = [
            path
            for path in folder.glob("test_*.py")
            if TEST_FUNCTION.search(path.read_text(encoding="utf-8"))
        ]
        if not tests:
            missing.append(tier)
    assert missing == [], f"tests/{service} has no test in {missing} (docs/testing.md)"


def test_the_tiers_are_the_ones_docs_testing_describes():
    described = re.findall(r"^### `(\w+)/`", (ROOT / "docs/testing.md").read_text(), re.M)
    assert tuple(described) == TIERS
