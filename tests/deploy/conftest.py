"""Shared helpers for the static deploy checks (no Docker engine, no cluster)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
SERVICES = ("queue", "payment", "rating", "gateway")
PORTS = {"queue": 8001, "payment": 8002, "rating": 8003, "gateway": 8000}
# settings that are secrets: never defaulted in deploy files, always from a secret store
SECRET_NAMES = re.compile(r"(_KEY$|SECRET|PASSWORD|_DB_URL$|^AMQP_URI$)")
_VAR = re.compile(r"\$\{([A-Z0-9_]+)(?::([^}]*))?\}")


def config_vars(service: str) -> dict[str, str]:
    """The ``${VAR:default}`` environment variables a service's config.yaml reads."""
    text = (ROOT / "services" / service / "config.yaml").read_text()
    return {name: default or "" for name, default in _VAR.findall(text)}


@pytest.fixture(scope="session")
def readme() -> str:
    path = ROOT / "README.md"
    if not path.exists():
        pytest.fail("README.md is missing: it must carry the deploy commands")
    return path.read_text()


@pytest.fixture(scope="session")
def compose() -> dict:
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text())
