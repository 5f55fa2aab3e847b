"""The Prometheus scrape configs, alert rules and Grafana dashboard only use metrics the services
really export, scrape every service on its probe port, and every alert has a runbook section."""

from __future__ import annotations

import json
import re

import prometheus_client
import pytest
import yaml

from mpp_chassis import metrics as chassis_metrics
from mpp_gateway import metrics as gateway_metrics
from tests.deploy.conftest import DEPLOY, PORTS, ROOT, SERVICES

SUFFIXES = {"counter": ("_total",), "gauge": ("",), "histogram": ("_bucket", "_sum", "_count")}
METRIC = re.compile(r"\b(mpp_[a-z0-9_]+)\b")


def exported() -> set[str]:
    names = set()
    for module in (chassis_metrics, gateway_metrics):
        for value in vars(module).values():
            if isinstance(value, prometheus_client.metrics.MetricWrapperBase):
                for family in value.describe():
                    names |= {family.name + s for s in SUFFIXES[family.type]}
    return names


def alert_rules() -> list[dict]:
    groups = yaml.safe_load((DEPLOY / "prometheus" / "alerts.yml").read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def dashboard_exprs() -> list[str]:
    dashboard = json.loads((DEPLOY / "grafana" / "dashboards" / "mpp-overview.json").read_text())
    return [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]


def test_the_exported_metrics_are_the_ones_the_issue_names():
    names = exported()
    for needed in (
        "mpp_entrypoint_calls_total",
        "mpp_entrypoint_seconds_bucket",
        "mpp_outbox_backlog",
        "mpp_events_handled_total",
        "mpp_dead_letters",
        "mpp_http_requests_total",
        "mpp_http_request_seconds_bucket",
    ):
        assert needed in names


@pytest.mark.parametrize("source", ["alerts", "dashboard"])
def test_alerts_and_dashboard_reference_only_exported_metrics(source):
    exprs = [r["expr"] for r in alert_rules()] if source == "alerts" else dashboard_exprs()
    used = {name for expr in exprs for name in METRIC.findall(expr)}
    assert used, "expressions must use the mall's metrics"
    assert used <= exported(), f"unknown metrics: {sorted(used - exported())}"


def test_the_dashboard_covers_every_area():
    exprs = " ".join(dashboard_exprs())
    for metric in (
        "mpp_entrypoint_calls_total",
        "mpp_entrypoint_seconds_bucket",
        "mpp_outbox_backlog",
        "mpp_events_handled_total",
        "mpp_dead_letters",
        "mpp_http_requests_total",
        "mpp_http_request_seconds_bucket",
    ):
        assert metric in exprs, f"no panel shows {metric}"
    dashboard = json.loads((DEPLOY / "grafana" / "dashboards" / "mpp-overview.json").read_text())
    assert len({p["id"] for p in dashboard["panels"]}) == len(dashboard["panels"])


def test_every_alert_is_well_formed_and_has_a_runbook_section():
    runbook = (ROOT / "docs" / "operations.md").read_text()
    anchors = {
        re.sub(r"[^a-z0-9 -]", "", line.lstrip("#").strip().lower()).replace(" ", "-")
        for line in runbook.splitlines()
        if line.startswith("#")
    }
    rules = alert_rules()
    assert len({r["alert"] for r in rules}) == len(rules) >= 5
    for rule in rules:
        assert rule["labels"]["severity"] in ("warning", "critical")
        assert rule["annotations"]["summary"] and rule["for"]
        path, _, anchor = rule["annotations"]["runbook_url"].partition("#")
        assert path == "docs/operations.md" and anchor == rule["alert"].lower()
        assert anchor in anchors, f"docs/operations.md has no section for {rule['alert']}"
    assert any("mpp_dead_letters" in r["expr"] for r in rules)
    assert any(r["expr"].startswith("up{") for r in rules)


def test_scrape_configs_reach_every_service_on_its_probe_port(compose):
    config = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    assert config["rule_files"] == ["alerts.yml"]
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    for service in SERVICES:
        (sd,) = jobs[f"mpp-{service}"]["dns_sd_configs"]
        assert sd["names"] == [service] and sd["port"] == PORTS[service]
        assert service in compose["services"]
    kube = yaml.safe_load((DEPLOY / "prometheus" / "prometheus-kubernetes.yml").read_text())
    assert kube["rule_files"] == ["alerts.yml"]
    relabels = kube["scrape_configs"][0]["relabel_configs"]
    assert any(r.get("replacement") == "mpp-$1" and r["target_label"] == "job" for r in relabels)
    volumes = compose["services"]["prometheus"]["volumes"]
    assert "./prometheus:/etc/prometheus:ro" in volumes


def test_alerts_go_to_an_alertmanager_whose_routes_are_complete(compose):
    for name in ("prometheus.yml", "prometheus-kubernetes.yml"):
        config = yaml.safe_load((DEPLOY / "prometheus" / name).read_text())
        (manager,) = config["alerting"]["alertmanagers"]
        (static,) = manager["static_configs"]
        assert static["targets"] and all(t.endswith(":9093") for t in static["targets"]), name
    compose_config = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    (target,) = compose_config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"]
    service = compose["services"][target.partition(":")[0]]
    assert service["profiles"] == compose["services"]["prometheus"]["profiles"]
    assert "./alertmanager:/etc/alertmanager:ro" in service["volumes"]
    config = yaml.safe_load((DEPLOY / "alertmanager" / "alertmanager.yml").read_text())
    receivers = {r["name"] for r in config["receivers"]}
    routes = [config["route"], *config["route"].get("routes", [])]
    assert all(route["receiver"] in receivers for route in routes)
    critical = [r for r in routes if 'severity="critical"' in r.get("matchers", [])]
    assert critical, "critical alerts have a route of their own"
    severities = {r["labels"]["severity"] for r in alert_rules()}
    assert severities <= {"warning", "critical"}


def test_a_service_with_no_instance_at_all_still_alerts():
    """``up == 0`` needs a target: a service gone from discovery has no ``up`` series, so an
    ``absent()`` rule covers each service's scrape job."""
    exprs = " ".join(r["expr"] for r in alert_rules() if "absent(" in r["expr"])
    for service in SERVICES:
        assert f'absent(up{{job="mpp-{service}"}})' in exprs, service


INFRASTRUCTURE = {"rabbitmq": 15692, "postgres": 9187, "redis": 9121}


def test_the_broker_database_and_redis_are_scraped_as_their_alerts_expect(compose):
    """The infrastructure alerts ask for jobs ``rabbitmq``, ``postgres`` and ``redis``: both scrape
    configs have them, compose runs an exporter (pinned) behind each, and RabbitMQ's built-in
    exporter plugin is enabled in compose and on the RabbitmqCluster."""
    exprs = " ".join(r["expr"] for r in alert_rules())
    plugins = (DEPLOY / "rabbitmq" / "enabled_plugins").read_text()
    assert "rabbitmq_prometheus" in plugins
    assert (
        "./rabbitmq/enabled_plugins:/etc/rabbitmq/enabled_plugins:ro"
        in (compose["services"]["rabbitmq"]["volumes"])
    )
    compose_jobs = {
        job["job_name"]: job
        for job in yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())[
            "scrape_configs"
        ]
    }
    kube = yaml.safe_load((DEPLOY / "prometheus" / "prometheus-kubernetes.yml").read_text())
    kube_jobs = {job["job_name"] for job in kube["scrape_configs"]}
    for job, port in INFRASTRUCTURE.items():
        assert f'up{{job="{job}"}} == 0' in exprs and f'absent(up{{job="{job}"}})' in exprs
        assert job in kube_jobs, f"prometheus-kubernetes.yml does not scrape {job}"
        (static,) = compose_jobs[job]["static_configs"]
        (target,) = static["targets"]
        host, _, target_port = target.partition(":")
        assert int(target_port) == port and host in compose["services"], target
        image = compose["services"][host]["image"]
        assert re.search(r":v?\d+\.\d+\.\d+", image), f"{host}: pin {image}"
        if host != job:  # an exporter: only with the observability profile
            assert compose["services"][host]["profiles"] == ["observability"]
    cluster = yaml.safe_load((DEPLOY / "k8s" / "operators" / "rabbitmq-cluster.yaml").read_text())
    assert "rabbitmq_prometheus" in cluster["spec"]["rabbitmq"]["additionalPlugins"]


AGGREGATION = re.compile(
    r"\b(sum|max|min|avg|count|group|topk|bottomk)\s*(?:by\s*\(([^)]*)\))?\s*\("
)


def namespace_dropped(expr: str) -> list[str]:
    """The aggregations in ``expr`` that drop the ``namespace`` label (no ``by``, or a ``by``
    without it): their alert could not say which mall it is about."""
    return [
        match.group(0)
        for match in AGGREGATION.finditer(expr)
        if "namespace" not in (match.group(2) or "")
    ]


def test_every_alert_aggregation_keeps_the_namespace():
    """One Prometheus may watch staging and production: an aggregation without ``namespace``
    would add their series up (the unit tests in alerts_test.yml show it for some alerts; this
    holds every alert, including the next one, to it)."""
    for rule in alert_rules():
        assert namespace_dropped(rule["expr"]) == [], rule["alert"]
    assert namespace_dropped("max by (job) (mpp_outbox_parked_events) > 0")  # it can fail
    assert namespace_dropped("sum(rate(mpp_http_requests_total[5m]))")


def test_an_outage_of_the_broker_or_database_holds_back_its_symptoms():
    config = yaml.safe_load((DEPLOY / "alertmanager" / "alertmanager.yml").read_text())
    (rule,) = config["inhibit_rules"]
    (source,) = rule["source_matchers"]
    causes = set(re.fullmatch(r'alertname=~"([A-Za-z|]+)"', source).group(1).split("|"))
    rules = {r["alert"]: r for r in alert_rules()}
    assert causes == {"MppBrokerDown", "MppPostgresDown"} and causes <= set(rules)
    assert all(rules[c]["labels"]["severity"] == "critical" for c in causes)
    assert rule["target_matchers"] == ['severity="warning"']  # never another critical
    assert rule["equal"] == ["namespace"], "one namespace's outage holds back its own alerts"
