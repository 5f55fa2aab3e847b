"""The domain package must stay runnable without the service's infrastructure."""

import ast
from pathlib import Path

import pytest

import mpp_queue.domain

DOMAIN = Path(mpp_queue.domain.__file__).parent
FORBIDDEN = {"nameko", "kombu", "sqlalchemy", "eventlet", "marshmallow"}
MODULES = sorted(DOMAIN.glob("*.py"))


def imported_roots(path: Path) -> set[str]:
    roots = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            roots |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    return roots


def test_the_contract_modules_exist():
    names = {p.stem for p in MODULES}
    expected = {
        "nik",
        "numbering",
        "tickets",
        "calling",
        "eta",
        "bookings",
        "sla",
        "kpi",
        "announce",
    }
    assert expected <= names


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.name)
def test_domain_imports_no_infrastructure(path):
    assert not imported_roots(path) & FORBIDDEN
