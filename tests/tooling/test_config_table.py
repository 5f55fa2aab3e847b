"""The README's configuration table names every variable the services read, and nothing else
(issue 18: it missed RATE_LIMIT_*, REDIS_*, IKM_WEIGHT, IDEMPOTENCY_TTL_HOURS, DISPLAY_* …)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SERVICES = ("queue", "payment", "rating", "gateway")
FROM_CONFIG = re.compile(r"\$\{([A-Z][A-Z0-9_]*):")
FROM_ENVIRONMENT = re.compile(r"os\.environ(?:\.get\(|\[)\s*\"([A-Z][A-Z0-9_]*)\"")


def read_by_services() -> dict[str, str]:
    """Every variable a service reads: its config.yaml's ${VAR:default}, and the few read straight
    from os.environ by the services' and libraries' code."""
    found: dict[str, str] = {}
    for service in SERVICES:
        config = ROOT / "services" / service / "config.yaml"
        # comments aside ("values come from the environment (${VAR:default})")
        text = "\n".join(re.sub(r"(^|\s)#.*", "", line) for line in config.read_text().splitlines())
        for name in FROM_CONFIG.findall(text):
            found.setdefault(name, str(config.relative_to(ROOT)))
    for package in [*ROOT.glob("services/*/mpp_*"), *ROOT.glob("libs/*/mpp_*")]:
        for path in package.rglob("*.py"):
            for name in FROM_ENVIRONMENT.findall(path.read_text()):
                found.setdefault(name, str(path.relative_to(ROOT)))
    return found


def documented() -> set[str]:
    text = (ROOT / "README.md").read_text()
    table = text[text.index("## Configuration") : text.index("## Deploy")]
    names: set[str] = set()
    for line in table.splitlines():
        if not line.startswith("| `"):
            continue
        first = line.split("|")[1]
        for name in re.findall(r"`([A-Z<][A-Z0-9_<>]*)`", first):
            if name.startswith("<SERVICE>"):
                names.update(s.upper() + name.removeprefix("<SERVICE>") for s in SERVICES)
            else:
                names.add(name)
    return names


def test_every_variable_read_is_in_the_readme_table():
    read = read_by_services()
    assert {"AMQP_URI", "REDIS_PREFIX", "IKM_WEIGHT", "QUEUE_SWEEP_SECONDS"} <= set(read)
    missing = {name: where for name, where in read.items() if name not in documented()}
    assert not missing, f"read but not in README's configuration table: {missing}"


def test_the_table_names_no_variable_nobody_reads():
    stale = documented() - set(read_by_services())
    assert not stale, f"in README's configuration table but read by no service: {stale}"
