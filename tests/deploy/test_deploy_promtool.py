"""Prometheus's and Alertmanager's own checkers on deploy/: ``promtool check config`` on the compose
and Kubernetes scrape configs, ``promtool check rules`` and ``promtool test rules`` (the alerts'
unit tests, deploy/prometheus/alerts_test.yml, fire each key alert on synthetic series) and
``amtool check-config``. .ci/run installs Debian's ``prometheus`` and
``prometheus-alertmanager``."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.deploy.conftest import DEPLOY

PROMETHEUS = DEPLOY / "prometheus"
# the alerts whose firing alerts_test.yml proves (the others are checked by `check rules`)
UNIT_TESTED = {
    "MppServiceDown",
    "MppServiceAbsent",
    "MppDeadLetters",
    "MppHttpErrors",
    "MppBrokerMemoryAlarm",
    "MppBrokerBacklog",
    "MppPostgresConnectionsNearMax",
    "MppPostgresDown",
    "MppPostgresReplicationLag",
    "MppBrokerDown",
    "MppRedisDown",
}


def tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        package = "prometheus-alertmanager" if name == "amtool" else "prometheus"
        pytest.fail(f"{name} is not installed (.ci/run installs Debian's {package})")
    return found


def run(*args: str | Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=120)


def without_kubernetes_sd(config: Path, directory: Path) -> Path:
    """A copy of ``config`` whose ``kubernetes_sd_configs`` are static targets, beside a copy of its
    rule files: Debian builds Prometheus without Kubernetes discovery (its client libraries are
    not packaged), so its promtool rejects that one field. Everything else (relabelling, rule
    files, alerting) is still checked as written."""
    document = yaml.safe_load(config.read_text())
    replaced = 0
    for job in document["scrape_configs"]:
        if job.pop("kubernetes_sd_configs", None) is not None:
            job["static_configs"] = [{"targets": ["pod.example:8000"]}]
            replaced += 1
    assert replaced, f"{config.name}: no kubernetes_sd_configs to stand in for"
    for rule_file in document.get("rule_files", []):
        shutil.copy(config.parent / rule_file, directory / rule_file)
    copy = directory / config.name
    copy.write_text(yaml.safe_dump(document))
    return copy


@pytest.mark.parametrize("name", ["prometheus.yml", "prometheus-kubernetes.yml"])
def test_prometheus_configs_pass_promtool(name, tmp_path):
    config = PROMETHEUS / name
    result = run(tool("promtool"), "check", "config", config)
    if "field kubernetes_sd_configs not found" in result.stderr + result.stdout:
        result = run(tool("promtool"), "check", "config", without_kubernetes_sd(config, tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout and "rules found" in result.stdout  # alerts.yml was read


def test_promtool_check_config_can_fail(tmp_path):
    broken = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text())
    broken["scrape_configs"].append(dict(broken["scrape_configs"][0]))  # a duplicate job name
    broken["rule_files"] = []
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(broken))
    result = run(tool("promtool"), "check", "config", tmp_path / "prometheus.yml")
    assert result.returncode != 0 and "found multiple scrape configs" in result.stderr


def test_alert_rules_pass_promtool_check_rules(tmp_path):
    result = run(tool("promtool"), "check", "rules", PROMETHEUS / "alerts.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    broken = (PROMETHEUS / "alerts.yml").read_text().replace("> 0", "> > 0", 1)
    (tmp_path / "alerts.yml").write_text(broken)
    assert run(tool("promtool"), "check", "rules", tmp_path / "alerts.yml").returncode != 0


def test_the_alerts_fire_on_their_unit_tests():
    result = run(tool("promtool"), "test", "rules", PROMETHEUS / "alerts_test.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    tests = yaml.safe_load((PROMETHEUS / "alerts_test.yml").read_text())
    assert tests["rule_files"] == ["alerts.yml"]
    fired = {
        case["alertname"]
        for test in tests["tests"]
        for case in test.get("alert_rule_test", [])
        if case.get("exp_alerts")
    }
    assert fired >= UNIT_TESTED, f"no unit test fires {sorted(UNIT_TESTED - fired)}"


# each mutation breaks one alert the way a careless edit would; its unit test must catch it
MUTATIONS = {
    "namespace dropped": ("max by (namespace) (mpp_dead_letters) > 0", "max(mpp_dead_letters) > 0"),
    "threshold raised": (
        "max by (namespace) (mpp_dead_letters) > 0",
        "max by (namespace) (mpp_dead_letters) > 5",
    ),
    "absent() alone": (") unless on (namespace, job)", ") and on (namespace, job)"),
    "5xx ratio over all namespaces": (
        "/ sum by (namespace) (rate(mpp_http_requests_total[5m]))",
        "/ sum(rate(mpp_http_requests_total[5m]))",
    ),
    "CloudNativePG's connections ignored": (
        "> 0.8\n          or sum by (namespace, instance) (cnpg_backends_total)",
        '> 0.8\n          or sum by (namespace, instance) (cnpg_backends_total{state="x"})',
    ),
    "memory alarm per namespace only": (
        "max by (namespace, instance) (rabbitmq_alarms_memory_used_watermark)",
        "max by (namespace) (rabbitmq_alarms_memory_used_watermark)",
    ),
    "down never fires": ('expr: up{job=~"mpp-.*"} == 0', 'expr: up{job=~"mpp-.*"} < 0'),
}


@pytest.mark.parametrize("mutation", sorted(MUTATIONS))
def test_a_broken_alert_fails_its_unit_test(mutation, tmp_path):
    old, new = MUTATIONS[mutation]
    rules = (PROMETHEUS / "alerts.yml").read_text()
    assert rules.count(old) == 1, f"{mutation}: {old!r} is no longer in alerts.yml"
    (tmp_path / "alerts.yml").write_text(rules.replace(old, new))
    shutil.copy(PROMETHEUS / "alerts_test.yml", tmp_path / "alerts_test.yml")
    result = run(tool("promtool"), "test", "rules", tmp_path / "alerts_test.yml")
    assert result.returncode != 0 and "FAILED" in result.stdout + result.stderr, mutation


def test_alertmanager_config_passes_amtool(tmp_path):
    config = DEPLOY / "alertmanager" / "alertmanager.yml"
    result = run(tool("amtool"), "check-config", config)
    assert result.returncode == 0, result.stdout + result.stderr
    broken = yaml.safe_load(config.read_text())
    broken["route"]["routes"][0]["receiver"] = "nobody"  # a route to an undefined receiver
    (tmp_path / "alertmanager.yml").write_text(yaml.safe_dump(broken))
    result = run(tool("amtool"), "check-config", tmp_path / "alertmanager.yml")
    assert result.returncode != 0 and "undefined receiver" in result.stdout + result.stderr
