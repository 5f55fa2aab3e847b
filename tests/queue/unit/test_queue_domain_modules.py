"""The queue's rules live in the domain modules docs/queue-rules.md names. That they import no
infrastructure is checked for every service's domain by the import-linter contract "Domain
packages are pure" (tests/tooling/test_import_contracts.py)."""

from pathlib import Path

import mpp_queue.domain

DOMAIN = Path(mpp_queue.domain.__file__).parent


def test_the_contract_modules_exist():
    names = {p.stem for p in DOMAIN.glob("*.py")}
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
