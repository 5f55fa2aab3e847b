"""deploy/compose.yaml: valid against the Compose Specification, healthchecks and ordered start-up,
one-shot migrations, configuration through the environment, no secret in the repository."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from tests.deploy.conftest import (
    DEPLOY,
    PORTS,
    ROOT,
    SECRET_NAMES,
    SERVICES,
    startup_refusals,
    startup_secrets,
)

SCHEMA = ROOT.parent / "shared" / "schemas" / "compose-spec.json"
INFRA = ("rabbitmq", "postgres", "redis")


def test_compose_validates_against_the_compose_specification(compose):
    if not SCHEMA.exists():
        pytest.skip(f"Compose Specification schema not found at {SCHEMA} (shared/ beside the repo)")
    import jsonschema

    schema = json.loads(SCHEMA.read_text())
    validator = jsonschema.Draft7Validator(schema)  # the schema declares draft-07
    errors = [f"{list(e.path)}: {e.message}" for e in validator.iter_errors(compose)]
    assert errors == []
    broken = {**compose, "services": {"x": {"image": "a", "depends_on": {"y": {"condition": 1}}}}}
    assert list(validator.iter_errors(broken)), "the schema check must be able to fail"


def test_every_service_and_infrastructure_piece_is_there(compose):
    services = compose["services"]
    for name in (*INFRA, *SERVICES, *(f"migrate-{s}" for s in SERVICES)):
        assert name in services, name
    assert "management" in services["rabbitmq"]["image"]
    for name, spec in services.items():
        image = spec["image"]
        assert not image.endswith(":latest") and ":" in image, f"{name}: pin {image}"


def test_start_up_order_waits_for_health_and_completed_migrations(compose):
    services = compose["services"]
    for name in (*INFRA, *SERVICES):
        assert "healthcheck" in services[name], f"{name} needs a healthcheck"
    for service in SERVICES:
        depends = services[service]["depends_on"]
        assert depends["rabbitmq"] == {"condition": "service_healthy"}
        assert depends["postgres"] == {"condition": "service_healthy"}
        assert depends[f"migrate-{service}"] == {"condition": "service_completed_successfully"}
        migrate = services[f"migrate-{service}"]
        assert migrate["command"] == ["python", "-m", "mpp_chassis.migrate", service]
        assert migrate["image"] == services[service]["image"]
        assert migrate["restart"] == "no"
        assert migrate["depends_on"]["postgres"] == {"condition": "service_healthy"}
        assert "command" not in services[service], "the image's nameko run is the command"
        probe = " ".join(services[service]["healthcheck"]["test"])
        assert f"127.0.0.1:{PORTS[service]}/" in probe
    for spec in services.values():
        for target in spec.get("depends_on", {}):
            assert target in services


def test_images_build_from_the_one_dockerfile_with_their_own_target(compose):
    for service in SERVICES:
        build = compose["services"][service]["build"]
        dockerfile = "deploy/docker/Dockerfile"
        assert build == {"context": "..", "dockerfile": dockerfile, "target": service}
        assert (DEPLOY / build["context"] / build["dockerfile"]).exists()


def test_only_the_gateway_is_published_to_the_network(compose):
    public = {}
    for name, spec in compose["services"].items():
        for port in spec.get("ports", []):
            if not str(port).startswith("127.0.0.1:"):
                public.setdefault(name, []).append(port)
    assert list(public) == ["gateway"] and len(public["gateway"]) == 1, public
    assert str(public["gateway"][0]).endswith(":8000")


def test_each_service_gets_its_database_broker_and_secrets_from_the_environment(compose):
    init = (DEPLOY / "postgres" / "init-databases.sh").read_text()
    for service in SERVICES:
        env = compose["services"][service]["environment"]
        needed = startup_secrets(service, env)
        missing = [v for v in needed if v not in env]
        assert not missing, f"{service}: set {missing} in deploy/compose.yaml"
        for name in needed:
            if name in ("AMQP_URI",) or name.endswith("_DB_URL"):
                continue  # built from the required RABBITMQ_* / POSTGRES_* below
            assert re.fullmatch(rf"\$\{{{name}:\?[^}}]+\}}", env[name]), f"{name}: required"
        assert env[f"{service.upper()}_HTTP_ADDRESS"] == f"0.0.0.0:{PORTS[service]}"
        url = env[f"{service.upper()}_DB_URL"]
        assert url.startswith("postgresql://") and url.endswith(f"@postgres:5432/{service}")
        assert env["AMQP_URI"].endswith("@rabbitmq:5672/")
        assert service in re.search(r"MPP_DATABASES:-([a-z ]+)", init).group(1).split()


def test_secrets_come_from_an_uncommitted_env_file():
    text = (DEPLOY / "compose.yaml").read_text()
    example = (DEPLOY / ".env.example").read_text()
    defined = set(re.findall(r"^([A-Z0-9_]+)=", example, re.MULTILINE))
    for name, default in re.findall(r"\$\{([A-Z0-9_]+)(:?[-?][^}]*)?\}", text):
        assert name in defined or default.startswith((":-", "-")), f"{name} not in .env.example"
        if SECRET_NAMES.search(name):
            assert not default.startswith((":-", "-")), f"{name} must not have a default"
    ignored = subprocess.run(
        ["git", "check-ignore", "-q", "deploy/.env"], cwd=ROOT, capture_output=True
    )
    assert ignored.returncode == 0, "deploy/.env must be git-ignored"
    assert "change-me" not in text


def test_readme_command_starts_this_compose_file(readme):
    commands = re.findall(r"docker compose -f (\S+) up\b", readme)
    assert commands, "README.md must give the compose command"
    for path in commands:
        assert (ROOT / path).resolve() == (DEPLOY / "compose.yaml").resolve()
    assert Path(ROOT / "deploy" / ".env.example").exists()
    assert "deploy/.env.example" in readme


def test_every_service_runs_deployed_without_the_simulator(compose, monkeypatch):
    """MALL_ENVIRONMENT=deployed everywhere (the services then refuse default secrets), and the
    settings themselves pass the services' own deployed-mode checks: payment names a real
    provider (its default is the simulator, so it must be set) with that provider's key."""
    for service in SERVICES:
        env = compose["services"][service]["environment"]
        assert env["MALL_ENVIRONMENT"] == "deployed", service
        assert env["PAYMENT_PROVIDER"] == "midtrans", service  # the gateway reads it too
        assert startup_refusals(service, env, monkeypatch) == [], service
    payment = compose["services"]["payment"]["environment"]
    assert payment["PAYMENT_PROVIDER"] == "midtrans"
    assert "MIDTRANS_SERVER_KEY" in startup_secrets("payment", payment)
    for name, spec in compose["services"].items():
        for key, value in (spec.get("environment") or {}).items():
            assert "simulator" not in f"{key}={value}".lower(), f"{name}: {key}"
    assert compose["services"]["gateway"]["environment"]["REDIS_URL"] == "redis://redis:6379/0"
    # the check can fail: the simulator is refused by the payment service's own rule
    refused = startup_refusals("payment", {**payment, "PAYMENT_PROVIDER": "simulator"}, monkeypatch)
    assert any("PAYMENT_PROVIDER=simulator" in r for r in refused)
