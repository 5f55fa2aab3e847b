"""deploy/k8s/monitoring, for clusters with the Prometheus Operator and Grafana's dashboard sidecar:
PodMonitors scraping what the alerts ask for, the alerts as a PrometheusRule identical to
deploy/prometheus/alerts.yml, and the dashboard with a ``namespace`` variable that every query
filters by. Both generated files are rewritten by ``python -m tests.deploy.test_deploy_monitoring``.
The operators' custom resources (here and in deploy/k8s/operators) validate against the vendored
CRD schemas (tests/deploy/crds)."""

from __future__ import annotations

import copy
import json
import re

import jsonschema
import kubernetes_validate
import pytest
import yaml

from tests.deploy.conftest import DEPLOY, SERVICES, is_custom, kustomize, validate_custom

K8S = DEPLOY / "k8s"
MONITORING = K8S / "monitoring"
ENVIRONMENTS = {"staging": "mpp-staging", "production": "mpp"}
RULE = MONITORING / "prometheusrule.yaml"
DASHBOARD = MONITORING / "mpp-kubernetes.json"
COMPOSE_DASHBOARD = DEPLOY / "grafana" / "dashboards" / "mpp-overview.json"
# a metric of the mall's, the broker's, the database's or Redis's exporter, or `up`, with its
# label matchers if any
SELECTOR = re.compile(r"\b((?:mpp|rabbitmq|pg|cnpg|redis)_[a-z0-9_]+|up(?=\{))(?:\{([^}]*)\})?")
NAMESPACE = 'namespace="$namespace"'
RULE_HEADER = """\
# GENERATED from deploy/prometheus/alerts.yml: edit that file, then run
#   .venv/bin/python -m tests.deploy.test_deploy_monitoring
# (tests/deploy/test_deploy_monitoring.py fails while the two differ).
# SITE-SPECIFIC: your Prometheus's ruleSelector must select this object (kube-prometheus-stack:
# its release label, or ruleSelectorNilUsesHelmValues=false).
"""


def alerts() -> dict:
    return yaml.safe_load((DEPLOY / "prometheus" / "alerts.yml").read_text())


def prometheus_rule() -> dict:
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {"name": "mpp-alerts", "labels": {"app.kubernetes.io/part-of": "mpp"}},
        "spec": {"groups": alerts()["groups"]},
    }


def with_namespace(expr: str) -> str:
    """``expr`` with every selector of the mall's metrics (and ``up``) limited to ``$namespace``."""

    def limit(match: re.Match) -> str:
        matchers = ", ".join(m for m in (NAMESPACE, match.group(2)) if m)
        return f"{match.group(1)}{{{matchers}}}"

    return SELECTOR.sub(limit, expr)


def kubernetes_dashboard() -> dict:
    """The compose dashboard, for a cluster: a datasource and a ``namespace`` variable, every
    query limited to the chosen namespace."""
    dashboard = json.loads(COMPOSE_DASHBOARD.read_text())
    source = {"type": "prometheus", "uid": "${datasource}"}
    dashboard.update(uid="mpp-kubernetes", title=f"{dashboard['title']} (Kubernetes)")
    dashboard["templating"] = {
        "list": [
            {
                "name": "datasource",
                "label": "Data source",
                "type": "datasource",
                "query": "prometheus",
            },
            {
                "name": "namespace",
                "label": "Namespace",
                "type": "query",
                "datasource": source,
                "query": {"query": 'label_values(up{job=~"mpp-.*"}, namespace)', "refId": "ns"},
                "definition": 'label_values(up{job=~"mpp-.*"}, namespace)',
                "refresh": 2,
                "sort": 1,
            },
        ]
    }
    for panel in dashboard["panels"]:
        panel["datasource"] = source
        for target in panel["targets"]:
            target.update(expr=with_namespace(target["expr"]), datasource=source)
    return dashboard


def write() -> None:
    RULE.write_text(RULE_HEADER + yaml.safe_dump(prometheus_rule(), sort_keys=False, width=100))
    DASHBOARD.write_text(json.dumps(kubernetes_dashboard(), indent=2, ensure_ascii=False) + "\n")


def unfiltered(dashboard: dict) -> list[str]:
    """The selectors of the mall's metrics (and ``up``) a dashboard's queries leave unlimited
    to ``$namespace``; a query with no such selector at all counts too."""
    found = []
    for expr in (t["expr"] for p in dashboard["panels"] for t in p["targets"]):
        selectors = SELECTOR.findall(expr)
        found += (
            [expr] if not selectors else [m for m, labels in selectors if NAMESPACE not in labels]
        )
    return found


@pytest.fixture(scope="module", params=sorted(ENVIRONMENTS))
def rendered(request) -> tuple[str, list[dict]]:
    return request.param, kustomize(K8S / "overlays" / request.param / "monitoring")


def test_the_prometheus_rule_is_the_alerts_file():
    committed = yaml.safe_load(RULE.read_text())
    hint = "run .venv/bin/python -m tests.deploy.test_deploy_monitoring"
    assert committed == prometheus_rule(), f"prometheusrule.yaml differs from alerts.yml: {hint}"
    changed = copy.deepcopy(prometheus_rule())
    changed["spec"]["groups"][0]["rules"][0]["for"] = "1h"
    assert changed != committed  # a drift is seen


def test_the_kubernetes_dashboard_filters_every_query_by_namespace():
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard == kubernetes_dashboard(), "run python -m tests.deploy.test_deploy_monitoring"
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert "namespace" in variables["namespace"]["definition"]
    assert unfiltered(dashboard) == []
    assert unfiltered(json.loads(COMPOSE_DASHBOARD.read_text())), "the check can fail"
    compose = json.loads(COMPOSE_DASHBOARD.read_text())
    assert [p["title"] for p in dashboard["panels"]] == [p["title"] for p in compose["panels"]]


def test_monitoring_renders_into_the_environments_namespace(rendered):
    environment, objects = rendered
    kinds = sorted(o["kind"] for o in objects)
    assert kinds == [
        "ConfigMap",
        "PodMonitor",
        "PodMonitor",
        "PodMonitor",
        "PodMonitor",
        "PrometheusRule",
    ]
    assert {o["metadata"]["namespace"] for o in objects} == {ENVIRONMENTS[environment]}
    (config_map,) = (o for o in objects if o["kind"] == "ConfigMap")
    assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert json.loads(config_map["data"]["mpp-kubernetes.json"]) == kubernetes_dashboard()


def test_pod_monitors_scrape_the_jobs_the_alerts_ask_for(rendered):
    _, objects = rendered
    jobs = {}
    for spec in (o["spec"] for o in objects if o["kind"] == "PodMonitor"):
        (endpoint,) = spec["podMetricsEndpoints"]
        (relabel,) = [r for r in endpoint["relabelings"] if r["targetLabel"] == "job"]
        jobs[relabel["replacement"]] = (spec["selector"]["matchLabels"], endpoint["port"])
    exprs = " ".join(r["expr"] for g in alerts()["groups"] for r in g["rules"])
    for job in ("rabbitmq", "postgres", "redis"):
        assert f'up{{job="{job}"}}' in exprs and job in jobs, job
    labels, port = jobs["mpp-$1"]
    apps = kustomize(K8S / "overlays" / "production")
    deployments = {o["metadata"]["name"]: o for o in apps if o["kind"] == "Deployment"}
    for service in SERVICES:  # the services' pods, on their probe/metrics port `http`
        deployment = deployments[service]
        pod = deployment["spec"]["template"]
        assert labels.items() <= pod["metadata"]["labels"].items(), service
        assert port in {p["name"] for p in pod["spec"]["containers"][0]["ports"]}
        assert f'absent(up{{job="mpp-{service}"}})' in exprs
    assert jobs["postgres"] == ({"cnpg.io/cluster": "mpp-postgres"}, "metrics")
    assert jobs["rabbitmq"][1] == "prometheus"


def test_custom_resources_validate_against_their_operators_schemas(rendered):
    _, objects = rendered
    operators = [
        doc
        for path in sorted((K8S / "operators").glob("*.yaml"))
        for doc in yaml.safe_load_all(path.read_text())
        if doc
    ]
    custom = [o for o in [*objects, *operators] if is_custom(o)]
    assert {o["kind"] for o in custom} >= {
        "PodMonitor",
        "PrometheusRule",
        "Cluster",
        "RabbitmqCluster",
        "User",
    }
    for obj in custom:
        validate_custom(obj)
    for obj in (o for o in objects if not is_custom(o)):  # the dashboard's ConfigMap
        kubernetes_validate.validate(obj, "1.33.0", strict=True)
    monitor = next(o for o in custom if o["kind"] == "PodMonitor")
    broken = {**monitor, "spec": {**monitor["spec"], "podMetricEndpoints": []}}  # a typo
    with pytest.raises(jsonschema.ValidationError):
        validate_custom(broken)


if __name__ == "__main__":
    write()
