"""Least privilege on Kubernetes, on what ``kubectl kustomize`` renders: every pod of the mall is
isolated by a NetworkPolicy both ways; each service reaches only its database cluster, the
broker and DNS (the gateway also Redis, payment also its provider's HTTPS API); only the gateway
accepts connections from anywhere; and each pod reads only its own service's Secret."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
import yaml

from tests.deploy.conftest import DEPLOY, SERVICES, kustomize

K8S = DEPLOY / "k8s"
ENVIRONMENTS = ("staging", "production")
DNS = {
    "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
    "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
}
PROMETHEUS = {
    "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}},
    "podSelector": {"matchLabels": {"app.kubernetes.io/name": "prometheus"}},
}
PRIVATE = {"10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16"}
# who may read each secret key (the Deployment or migration Job of these services)
READERS = {
    "AMQP_URI": set(SERVICES),
    "QUEUE_DB_URL": {"queue"},
    "PAYMENT_DB_URL": {"payment"},
    "RATING_DB_URL": {"rating"},
    "GATEWAY_DB_URL": {"gateway"},
    "NIK_HASH_KEY": {"queue"},
    "TICKET_CODE_KEY": {"queue"},
    "MIDTRANS_SERVER_KEY": {"payment"},
    "XENDIT_SECRET_KEY": {"payment"},  # with PAYMENT_PROVIDER=xendit (docs/operations.md)
    "XENDIT_CALLBACK_TOKEN": {"payment"},
    "MALL_ADMIN_KEY": {"gateway"},
    "REDIS_PASSWORD": {"gateway", "redis"},
}


@pytest.fixture(scope="module", params=ENVIRONMENTS)
def rendered(request) -> list[dict]:
    overlay = K8S / "overlays" / request.param
    return [*kustomize(overlay), *kustomize(overlay / "migrate")]


def pods(objects: list[dict]) -> dict[str, dict]:
    """``Kind/name -> pod template`` of every workload."""
    return {
        f"{o['kind']}/{o['metadata']['name']}": o["spec"]["template"]
        for o in objects
        if o["kind"] in ("Deployment", "Job")
    }


def service_of(pod: dict) -> str:
    return pod["metadata"]["labels"]["app.kubernetes.io/name"]


def selecting(objects: list[dict], pod: dict) -> list[dict]:
    """The NetworkPolicies that select ``pod`` (by labels: the manifests use matchLabels only)."""
    labels = pod["metadata"]["labels"].items()
    found = []
    for policy in objects:
        if policy["kind"] != "NetworkPolicy":
            continue
        selector = policy["spec"]["podSelector"]
        assert set(selector) <= {"matchLabels"}, policy["metadata"]["name"]
        if selector.get("matchLabels", {}).items() <= labels:
            found.append(policy)
    return found


def rules(objects: list[dict], pod: dict, direction: str) -> list[dict]:
    return [
        rule
        for policy in selecting(objects, pod)
        for rule in policy["spec"].get(direction.lower(), [])
    ]


def example_urls() -> dict[str, str]:
    docs = yaml.safe_load_all((K8S / "secret.example.yaml").read_text())
    return {key: value for doc in docs if doc for key, value in doc["stringData"].items()}


def egress_targets(objects: list[dict], pod: dict) -> set[str]:
    """What ``pod`` may connect to, named; a peer no name fits fails the test."""
    service = service_of(pod)
    database = urlsplit(example_urls()[f"{service.upper()}_DB_URL"]).hostname.rsplit("-", 1)[0]
    broker = urlsplit(example_urls()["AMQP_URI"]).hostname
    targets = set()
    for rule in rules(objects, pod, "Egress"):
        assert rule.get("to") and rule.get("ports"), f"{service}: an egress rule open to all"
        ports = {p["port"] for p in rule["ports"]}
        for peer in rule["to"]:
            labels = peer.get("podSelector", {}).get("matchLabels")
            if peer == DNS and ports == {53}:
                targets.add("dns")
            elif "namespaceSelector" in peer:
                pytest.fail(f"{service}: egress to another namespace: {peer}")
            elif labels == {"cnpg.io/cluster": database} and ports == {5432}:
                targets.add("database")
            elif labels == {"app.kubernetes.io/name": broker} and ports == {5672}:
                targets.add("broker")
            elif labels == {"app.kubernetes.io/name": "redis"} and ports == {6379}:
                targets.add("redis")
            elif peer.get("ipBlock", {}).get("cidr") == "0.0.0.0/0" and ports == {443}:
                assert set(peer["ipBlock"]["except"]) >= PRIVATE, "outside the cluster only"
                targets.add("https outside")
            else:
                pytest.fail(f"{service}: egress to {peer} on {ports}")
    return targets


def test_a_network_policy_isolates_every_pod_both_ways(rendered):
    (deny,) = [
        p
        for p in rendered
        if p["kind"] == "NetworkPolicy" and "ingress" not in p["spec"] and "egress" not in p["spec"]
    ]
    assert set(deny["spec"]["policyTypes"]) == {"Ingress", "Egress"}
    for name, pod in pods(rendered).items():
        assert deny in selecting(rendered, pod), f"{name} is not under the default deny"
    for policy in (p for p in rendered if p["kind"] == "NetworkPolicy"):
        types = set(policy["spec"]["policyTypes"])  # rules of a type not listed are ignored
        assert "ingress" not in policy["spec"] or "Ingress" in types, policy["metadata"]["name"]
        assert "egress" not in policy["spec"] or "Egress" in types, policy["metadata"]["name"]
    outsider = {"metadata": {"labels": {"app.kubernetes.io/name": "mpp-rabbitmq"}}}
    assert selecting(rendered, outsider) == [], "the operators' pods are theirs to police"


def test_each_pod_reaches_only_what_it_needs(rendered):
    expected = {
        "queue": {"database", "broker", "dns"},
        "payment": {"database", "broker", "dns", "https outside"},  # the provider's API
        "rating": {"database", "broker", "dns"},
        "gateway": {"database", "broker", "dns", "redis"},
    }
    for name, pod in pods(rendered).items():
        service = service_of(pod)
        if service == "redis":
            assert rules(rendered, pod, "Egress") == [], "Redis sends nothing"
        elif name.startswith("Job/"):
            assert egress_targets(rendered, pod) == {"database", "dns"}, name
        else:
            assert egress_targets(rendered, pod) == expected[service], name


def test_only_the_gateway_accepts_connections(rendered):
    for name, pod in pods(rendered).items():
        service, ingress = service_of(pod), rules(rendered, pod, "Ingress")
        if name == "Deployment/gateway":
            assert ingress == [{"ports": [{"protocol": "TCP", "port": "http"}]}]
        elif name == "Deployment/redis":
            gateway = {
                "app.kubernetes.io/name": "gateway",
                "app.kubernetes.io/component": "service",
            }
            assert ingress == [
                {
                    "from": [{"podSelector": {"matchLabels": gateway}}],
                    "ports": [{"protocol": "TCP", "port": 6379}],
                },
                {"from": [PROMETHEUS], "ports": [{"protocol": "TCP", "port": "metrics"}]},
            ]
        elif name.startswith("Job/"):
            assert ingress == [], name
        else:  # queue, payment, rating: Prometheus scrapes their metrics port, nobody else
            assert ingress == [
                {"from": [PROMETHEUS], "ports": [{"protocol": "TCP", "port": "http"}]}
            ], service


def test_each_pod_reads_only_its_own_secrets(rendered):
    read = set()
    for name, pod in pods(rendered).items():
        service = service_of(pod)
        refs = [
            e["valueFrom"]["secretKeyRef"]
            for container in pod["spec"]["containers"]  # Redis's exporter sidecar too
            for e in container.get("env", [])
            if "secretKeyRef" in e.get("valueFrom", {})
        ]
        for ref in refs:
            read.add(ref["key"])
            assert service in READERS.get(ref["key"], ()), f"{name} reads {ref['key']}"
            own = "redis-secrets" if ref["key"] == "REDIS_PASSWORD" else f"{service}-secrets"
            assert ref["name"] == own, f"{name} reads {ref['key']} from {ref['name']}"
        others = [f"{s.upper()}_DB_URL" for s in SERVICES if s != service]
        assert not any(url in yaml.safe_dump(pod) for url in others), name
    assert {"AMQP_URI", "MALL_ADMIN_KEY", "NIK_HASH_KEY", "REDIS_PASSWORD"} <= read
