"""PostgreSQL connections are bounded by design: at each overlay's peak (every autoscaler at its
maximum, one surge pod per Deployment in a rollout, the migration Jobs), the pods' pools add up
to less than the ``max_connections`` of the CloudNativePG cluster their database URLs point at."""

from __future__ import annotations

import math
import os
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

from tests.deploy.conftest import DEPLOY, ROOT, config_vars, kustomize

K8S = DEPLOY / "k8s"
ENVIRONMENTS = ("staging", "production")
# connections kept free beside the mall's pools: people with `kubectl cnpg psql`, the outbox and
# dlq commands run by hand in a pod (docs/operations.md)
OPS_HEADROOM = 10
SUPERUSER_RESERVED_DEFAULT = 3  # PostgreSQL's superuser_reserved_connections


def clusters() -> dict[str, dict]:
    """The CloudNativePG clusters by name, as deploy/k8s/operators declares them."""
    found = {}
    for path in (K8S / "operators").glob("*.yaml"):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc and doc["kind"] == "Cluster" and doc["apiVersion"].startswith("postgresql.cnpg"):
                found[doc["metadata"]["name"]] = doc
    return found


def example_secrets() -> dict[tuple[str, str], str]:
    """``(secret, key) -> value`` of the Secrets that secret.example.yaml documents."""
    docs = yaml.safe_load_all((K8S / "secret.example.yaml").read_text())
    return {
        (doc["metadata"]["name"], key): value
        for doc in docs
        if doc
        for key, value in doc["stringData"].items()
    }


def database_cluster(ref: dict) -> str:
    """The CloudNativePG cluster a ``*_DB_URL`` secretKeyRef points at (its host is one of the
    cluster's Services: ``<cluster>-rw``, ``-ro`` or ``-r``)."""
    url = example_secrets()[(ref["name"], ref["key"])]
    host = urlsplit(url).hostname
    name = host.rsplit("-", 1)[0]
    assert name in clusters(), f"{ref['key']}: {host} is no Service of a cluster in operators/"
    return name


def uses_autocommit(service: str) -> bool:
    """The chassis opens its autocommit pool only for ``UnitOfWork.execute_now``."""
    package = ROOT / "services" / service / f"mpp_{service}"
    return any("execute_now" in path.read_text() for path in package.rglob("*.py"))


def pool_bound(service: str, workers: int) -> int:
    """Connections one process of ``service`` can hold: the chassis's pools have no overflow."""
    from mpp_chassis.db import POOL_SPARE, autocommit_pool_size

    bound = workers + POOL_SPARE
    if uses_autocommit(service):
        bound += autocommit_pool_size(workers)
    return bound


def max_workers(service: str, container: dict, config: dict[str, str]) -> int:
    variable = f"{service.upper()}_MAX_WORKERS"
    env = {e["name"]: e.get("value") for e in container.get("env", [])}
    return int(env.get(variable) or config.get(variable) or config_vars(service)[variable])


def peak_pods(deployment: dict, autoscalers: list[dict]) -> int:
    """Pods of a Deployment at once at worst: its replicas or its autoscaler's maximum (an HPA's
    maxReplicas, a KEDA ScaledObject's maxReplicaCount, 100 when unset), whichever is more, plus
    the surge pod a rolling update starts before an old one has gone."""
    spec = deployment["spec"]
    replicas = spec.get("replicas", 1)
    for scaler in autoscalers:
        target = scaler["spec"]["scaleTargetRef"]
        if target.get("kind", "Deployment") == "Deployment" and (
            target["name"] == deployment["metadata"]["name"]
        ):
            most = scaler["spec"].get("maxReplicas") or scaler["spec"].get("maxReplicaCount", 100)
            replicas = max(replicas, most)
    strategy = spec.get("strategy", {})
    if strategy.get("type") == "Recreate":
        return replicas
    surge = strategy.get("rollingUpdate", {}).get("maxSurge", "25%")
    if isinstance(surge, str):  # a percentage of the replicas, rounded up
        surge = math.ceil(replicas * int(surge.rstrip("%")) / 100)
    return replicas + surge


def connection_demand(apps: list[dict], jobs: list[dict]) -> dict[str, dict[str, int]]:
    """Per database cluster, the connections each workload can hold at the overlay's peak."""
    config = next(o for o in apps if o["kind"] == "ConfigMap")["data"]
    autoscalers = [o for o in apps if o["kind"] in ("HorizontalPodAutoscaler", "ScaledObject")]
    demand: dict[str, dict[str, int]] = {}
    for obj in [*apps, *jobs]:
        if obj["kind"] not in ("Deployment", "Job"):
            continue
        for container in obj["spec"]["template"]["spec"]["containers"]:
            for entry in container.get("env", []):
                ref = entry.get("valueFrom", {}).get("secretKeyRef")
                if not entry["name"].endswith("_DB_URL") or ref is None:
                    continue
                service = entry["name"].removesuffix("_DB_URL").lower()
                if obj["kind"] == "Job":  # a migration: Alembic on one NullPool connection
                    held = obj["spec"].get("parallelism", 1)
                else:
                    workers = max_workers(service, container, config)
                    held = peak_pods(obj, autoscalers) * pool_bound(service, workers)
                cluster = demand.setdefault(database_cluster(ref), {})
                cluster[f"{obj['kind']}/{obj['metadata']['name']}"] = held
    return demand


def usable(cluster: dict) -> int:
    """Connections the mall may hold: max_connections less the superusers' reserve and the
    people's headroom. max_connections must be set explicitly (the default is 100)."""
    parameters = cluster["spec"].get("postgresql", {}).get("parameters", {})
    assert "max_connections" in parameters, f"{cluster['metadata']['name']}: set max_connections"
    reserved = int(parameters.get("superuser_reserved_connections", SUPERUSER_RESERVED_DEFAULT))
    return int(parameters["max_connections"]) - reserved - OPS_HEADROOM


def over_budget(overlay: Path) -> dict[str, tuple[int, int]]:
    """``cluster -> (demand, usable)`` for every cluster the overlay's peak would exhaust."""
    demand = connection_demand(kustomize(overlay), kustomize(overlay / "migrate"))
    assert demand, f"{overlay}: no workload reads a database URL"
    over = {}
    for name, held in demand.items():
        total, limit = sum(held.values()), usable(clusters()[name])
        if total > limit:
            over[name] = (total, limit)
    return over


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_the_peak_fits_the_database_clusters_max_connections(environment):
    overlay = K8S / "overlays" / environment
    assert over_budget(overlay) == {}
    apps, jobs = kustomize(overlay), kustomize(overlay / "migrate")
    (held,) = connection_demand(apps, jobs).values()  # one cluster serves the four databases
    assert {k.split("/")[1] for k in held} >= {"queue", "payment", "rating", "gateway"}


def test_the_budget_fails_when_replicas_outgrow_it(tmp_path):
    """Raising replicas in an overlay without raising max_connections fails the check above."""
    production = K8S / "overlays" / "production"
    for directory, base in ((tmp_path, production), (tmp_path / "migrate", production / "migrate")):
        directory.mkdir(exist_ok=True)
        kustomization = {"resources": [os.path.relpath(base, directory)]}
        if directory == tmp_path:
            kustomization["replicas"] = [{"name": "queue", "count": 12}]
        (directory / "kustomization.yaml").write_text(yaml.safe_dump(kustomization))
    ((name, (total, limit)),) = over_budget(tmp_path).items()
    assert name == "mpp-postgres" and total > limit


def test_the_pool_bound_follows_the_chassis():
    """The figures docs/operations.md gives: 22 connections a process at 20 workers, 27 for the
    queue (its autocommit pool for the line's counters)."""
    assert pool_bound("payment", 20) == 22 and pool_bound("queue", 20) == 27
    assert uses_autocommit("queue") and not uses_autocommit("gateway")
