"""MALL_ENVIRONMENT: a deployed service refuses to start on a missing or local-default secret.

The refusals are checked on real ``nameko run`` processes (what the images run): one line on
stderr naming every problem, exit status 78, no traceback, nothing started; and the same services
start when their secrets are proper. The table logic itself is checked directly, quickly.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from mpp_chassis.environment import EXIT_CONFIG, Secret, common_secrets, refusals, when
from tests.support.mall import ROOT, SERVICES, ServiceProcess, free_port

NAMEKO = str(Path(sys.executable).parent / "nameko")
PROPER = {
    "MALL_ADMIN_KEY": "a-long-random-mall-admin-key",
    "NIK_HASH_KEY": "a-long-random-nik-hash-key",
    "TICKET_CODE_KEY": "a-long-random-ticket-code-key",
    "PAYMENT_PROVIDER": "midtrans",
    "MIDTRANS_SERVER_KEY": "SB-Mid-server-a-real-looking-key",
}
LOCAL_DEFAULTS = {
    "gateway": "PAYMENT_PROVIDER=simulator is the offline test double",
    "queue": "NIK_HASH_KEY is the local default",
    "payment": "PAYMENT_PROVIDER=simulator is the offline test double",
}


def base_env(tmp_path: Path, amqp_uri: str, **extra: str) -> dict:
    """The test process's environment without any mall setting, plus ``extra``."""
    mall_vars = ("MALL_", "NIK_", "PAYMENT_", "MIDTRANS_", "XENDIT_", "SIMULATOR_", "AMQP_URI")
    env = {k: v for k, v in os.environ.items() if not k.startswith(mall_vars)}
    env = {k: v for k, v in env.items() if not k.endswith(("_DB_URL", "_HTTP_ADDRESS"))}
    env.update({f"{s.upper()}_DB_URL": f"sqlite:///{tmp_path}/{s}.db" for s in SERVICES})
    env["AMQP_URI"] = amqp_uri
    env.update(extra)
    return env


def nameko_run(service: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            NAMEKO,
            "run",
            "--config",
            f"services/{service}/config.yaml",
            f"mpp_{service}.service:{service.capitalize()}Service",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,  # a service that did not refuse would run until killed here
    )


def refusal_line(result: subprocess.CompletedProcess, service: str) -> str:
    lines = [
        line
        for line in result.stderr.splitlines()
        if line.startswith(f"{service} refuses to start (MALL_ENVIRONMENT=deployed): ")
    ]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert result.returncode == EXIT_CONFIG
    return lines[0]


@pytest.mark.parametrize("service", SERVICES)
def test_a_deployed_service_refuses_to_start_on_the_local_defaults(service, tmp_path, amqp_uri):
    """The service's own secrets and its database URL left at config.yaml's defaults: each is
    named on the one line. (The broker URL's default is checked in ``test_the_table_rules``: a
    process on it would join the shared broker's default vhost if the check ever broke.)"""
    env = base_env(tmp_path, amqp_uri, MALL_ENVIRONMENT="deployed")
    del env[f"{service.upper()}_DB_URL"]
    line = refusal_line(nameko_run(service, env), service)
    assert f"{service.upper()}_DB_URL is the local default" in line
    if service in LOCAL_DEFAULTS:
        assert LOCAL_DEFAULTS[service] in line


@pytest.mark.parametrize(
    ("service", "env", "problem"),
    [
        ("gateway", {"MALL_ADMIN_KEY": ""}, "MALL_ADMIN_KEY is not set"),
        ("gateway", {"MALL_ADMIN_KEY": "local-mall-admin-key"}, "MALL_ADMIN_KEY is the local"),
        ("gateway", {"PAYMENT_PROVIDER": "simulator"}, "PAYMENT_PROVIDER=simulator"),
        ("gateway", {"MALL_ADMIN_KEY": "change-me-mall-admin-key"}, "change-me placeholder"),
        ("queue", {"NIK_HASH_KEY": "local-dev-nik-key"}, "NIK_HASH_KEY is the local default"),
        ("queue", {"NIK_HASH_KEY": " "}, "NIK_HASH_KEY is not set"),
        ("queue", {"TICKET_CODE_KEY": "local-ticket-code-key"}, "TICKET_CODE_KEY is the local"),
        ("payment", {"PAYMENT_PROVIDER": "simulator"}, "PAYMENT_PROVIDER=simulator"),
        ("payment", {"MIDTRANS_SERVER_KEY": ""}, "MIDTRANS_SERVER_KEY is not set"),
        (
            "payment",
            {"PAYMENT_PROVIDER": "xendit", "XENDIT_SECRET_KEY": "xnd_development_abc"},
            "XENDIT_CALLBACK_TOKEN is not set",
        ),
    ],
)
def test_one_bad_secret_among_proper_ones_is_named(service, env, problem, tmp_path, amqp_uri):
    settings = {**PROPER, **env}
    line = refusal_line(
        nameko_run(service, base_env(tmp_path, amqp_uri, MALL_ENVIRONMENT="deployed", **settings)),
        service,
    )
    assert problem in line
    assert "AMQP_URI" not in line and "_DB_URL" not in line


def test_an_unknown_environment_is_refused_in_any_mode(tmp_path, amqp_uri):
    result = nameko_run("rating", base_env(tmp_path, amqp_uri, MALL_ENVIRONMENT="production"))
    assert result.returncode == EXIT_CONFIG, result.stderr
    assert "MALL_ENVIRONMENT='production' is neither 'local' nor 'deployed'" in result.stderr


@pytest.mark.parametrize("service", SERVICES)
def test_an_unsupported_time_zone_is_refused_in_any_mode(service, tmp_path, amqp_uri):
    """Every service computes the mall's day in MALL_TIMEZONE. A zone outside WIB, WITA and WIT
    used to start a mall whose every slots read answered 500; now no service starts on it."""
    result = nameko_run(service, base_env(tmp_path, amqp_uri, MALL_TIMEZONE="Europe/Berlin"))
    assert result.returncode == EXIT_CONFIG, result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert (
        f"{service} refuses to start (MALL_ENVIRONMENT=local): MALL_TIMEZONE='Europe/Berlin' "
        "is not one of Asia/Jakarta, Asia/Makassar, Asia/Jayapura"
    ) in result.stderr


@pytest.mark.parametrize("environment", ["deployed", "local"])
def test_services_start_with_proper_secrets_or_locally(environment, tmp_path, amqp_uri):
    """Deployed with proper secrets, each service starts and answers /healthz; locally (the
    default, as `make run` and the tests) the public defaults still start a mall."""
    settings = {**PROPER, "MALL_ENVIRONMENT": "deployed"} if environment == "deployed" else {}
    processes = []
    try:
        for service in SERVICES:
            port = free_port()
            env = base_env(tmp_path, amqp_uri, **settings)
            env[f"{service.upper()}_HTTP_ADDRESS"] = f"127.0.0.1:{port}"
            proc = ServiceProcess(service, port, env, tmp_path / f"{service}.log")
            proc.start()
            processes.append(proc)
        for proc in processes:
            proc.wait_healthy(timeout=60)
    finally:
        for proc in processes:
            proc.send_stop()
        for proc in processes:
            proc.wait_stopped()
    for proc in processes:
        assert "refuses to start" not in proc.log_path.read_text()


def test_every_secret_a_config_file_defaults_is_in_a_startup_table():
    """A new ``${SECRET:default}`` in a config.yaml needs its row in the service's table."""
    from mpp_gateway.service import GatewayService
    from mpp_payment.service import PaymentService
    from mpp_queue.service import QueueService
    from mpp_rating.service import RatingService

    classes = {
        "gateway": GatewayService,
        "payment": PaymentService,
        "queue": QueueService,
        "rating": RatingService,
    }
    secret_like = re.compile(r"(_KEY$|SECRET|PASSWORD|_TOKEN$|_DB_URL$|^AMQP_URI$)")
    for service, cls in classes.items():
        text = (ROOT / "services" / service / "config.yaml").read_text()
        # BaseLoader: nameko's CLI, once imported by another test, teaches the other loaders to
        # resolve ${VAR:default} itself
        config = yaml.load(text, Loader=yaml.BaseLoader)
        table = {s.variable: s for s in (*common_secrets(service), *cls.startup_check.secrets)}
        for name, default in re.findall(r"\$\{([A-Z0-9_]+):([^}]*)\}", text):
            if secret_like.search(name):
                assert name in table, f"{service} reads {name}: add it to its StartupCheck"
                assert table[name].local_default == default, name
        assert config["MALL_ENVIRONMENT"] == "${MALL_ENVIRONMENT:local}"


def test_the_table_rules():
    table = (
        Secret("A_KEY", "local-a"),
        Secret("B_TOKEN", needed=when("MODE", "b")),
        Secret("C_KEY", key="C"),
    )
    deployed = {"MALL_ENVIRONMENT": "deployed", "A_KEY": "x", "C": "y"}
    assert refusals(deployed, table) == []
    assert refusals({**deployed, "MODE": "b"}, table) == ["B_TOKEN is not set"]
    assert refusals({**deployed, "A_KEY": "local-a", "C": None}, table) == [
        "A_KEY is the local default",
        "C_KEY is not set",
    ]
    assert refusals({**deployed, "A_KEY": 12345}, table) == []  # YAML may parse a number
    assert refusals({"A_KEY": "local-a"}, table) == []  # local (the default) allows them
    assert refusals({"MALL_ENVIRONMENT": "local", "A_KEY": "local-a"}, table) == []
    broker = {**deployed, "AMQP_URI": "amqp://guest:guest@localhost:5672/", "DB_URL": "x"}
    assert refusals(broker, common_secrets("queue")) == ["AMQP_URI is the local default"]
    rule = lambda config: "no" if config.get("X") else None  # noqa: E731
    assert refusals({**deployed, "X": 1}, table, (rule,)) == ["no"]
    for zone in ("Asia/Jakarta", "Asia/Makassar", "Asia/Jayapura", None, ""):
        assert refusals({"MALL_TIMEZONE": zone}, table) == []
    wrong = "MALL_TIMEZONE='UTC' is not one of Asia/Jakarta, Asia/Makassar, Asia/Jayapura"
    assert refusals({"MALL_TIMEZONE": "UTC"}, table) == [wrong]
    assert refusals({**deployed, "MODE": "b", "MALL_TIMEZONE": "UTC"}, table) == [
        wrong,
        "B_TOKEN is not set",
    ]
