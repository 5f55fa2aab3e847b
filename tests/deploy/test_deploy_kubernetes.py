"""deploy/k8s: each overlay renders (``kubectl kustomize``, what ``kubectl apply -k`` applies) into
manifests that validate against the Kubernetes schemas offline and hold the hardening rules."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import kubernetes_validate
import pytest
import yaml

from tests.deploy.conftest import (
    DEPLOY,
    PORTS,
    ROOT,
    SECRET_NAMES,
    SERVICES,
    config_vars,
    is_custom,
    kustomize,
    startup_refusals,
    startup_secrets,
    validate_custom,
)

K8S = DEPLOY / "k8s"
ENVIRONMENTS = ("staging", "production")
KUBERNETES_VERSIONS = ("1.29.0", "1.33.0")


def example_secrets() -> list[dict]:
    """The Secrets secret.example.yaml documents (one per service, and Redis's)."""
    return [d for d in yaml.safe_load_all((K8S / "secret.example.yaml").read_text()) if d]


def by_kind(objects: list[dict], kind: str) -> dict[str, dict]:
    return {o["metadata"]["name"]: o for o in objects if o["kind"] == kind}


@pytest.fixture(scope="module", params=ENVIRONMENTS)
def rendered(request) -> tuple[list[dict], list[dict]]:
    overlay = K8S / "overlays" / request.param
    return kustomize(overlay), kustomize(overlay / "migrate")


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_manifests_validate_against_kubernetes_schemas(rendered, version):
    apps, jobs = rendered
    for obj in [*apps, *jobs, *example_secrets()]:
        if is_custom(obj):  # an operator's kind (KEDA): its vendored CRD schema
            validate_custom(obj)
        else:
            kubernetes_validate.validate(obj, version, strict=True)
    broken = {**apps[0], "spec": {"replicas": "two"}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, version, strict=True)


def test_a_hardened_deployment_per_service(rendered):
    apps, _ = rendered
    deployments = by_kind(apps, "Deployment")
    assert sorted(deployments) == sorted([*SERVICES, "redis"])
    for name in SERVICES:
        deployment = deployments[name]
        pod = deployment["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["runAsUser"] == 10001  # the image's user
        (container,) = pod["containers"]
        image = container["image"].rsplit("/", 1)[-1]
        if deployment["metadata"]["namespace"] == "mpp":  # production: by digest, never a tag
            assert re.fullmatch(rf"mpp-{name}@sha256:[0-9a-f]{{64}}", image), image
        else:
            assert image == f"mpp-{name}:0.1.0", image
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        assert container["securityContext"]["allowPrivilegeEscalation"] is False
        assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"]
        assert any(v["name"] == "tmp" and "emptyDir" in v for v in pod["volumes"])
        resources = container["resources"]
        assert set(resources["requests"]) == set(resources["limits"]) == {"cpu", "memory"}
        assert container["ports"] == [{"name": "http", "containerPort": PORTS[name]}]
        assert config_vars(name)[f"{name.upper()}_HTTP_ADDRESS"].endswith(f":{PORTS[name]}")
        assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
        ready = "/healthz" if name == "gateway" else "/readyz"
        assert container["readinessProbe"]["httpGet"] == {"path": ready, "port": "http"}
        assert container["envFrom"] == [{"configMapRef": {"name": "mpp-config"}}]
        assert "command" not in container and "args" not in container
        assert pod["terminationGracePeriodSeconds"] >= 30


def test_every_deployment_spreads_its_replicas_over_nodes_and_zones(rendered):
    apps, _ = rendered
    for name, deployment in by_kind(apps, "Deployment").items():
        pod = deployment["spec"]["template"]
        constraints = {c["topologyKey"]: c for c in pod["spec"]["topologySpreadConstraints"]}
        assert set(constraints) == {"kubernetes.io/hostname", "topology.kubernetes.io/zone"}
        for constraint in constraints.values():
            selector = constraint["labelSelector"]["matchLabels"]
            assert selector == {"app.kubernetes.io/name": name}, name
            assert selector.items() <= pod["metadata"]["labels"].items(), name
            assert constraint["maxSkew"] == 1
        # a node lost takes at most its share; a one-zone cluster still schedules everything
        assert constraints["kubernetes.io/hostname"]["whenUnsatisfiable"] == "DoNotSchedule"
        assert constraints["topology.kubernetes.io/zone"]["whenUnsatisfiable"] == "ScheduleAnyway"


def test_gateway_service_autoscaler_and_disruption_budgets(rendered):
    apps, _ = rendered
    services = by_kind(apps, "Service")
    assert sorted(services) == ["gateway", "redis"]
    assert services["gateway"]["spec"]["selector"] == {"app.kubernetes.io/name": "gateway"}
    (hpa,) = by_kind(apps, "HorizontalPodAutoscaler").values()
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "gateway",
    }
    assert 2 <= hpa["spec"]["minReplicas"] < hpa["spec"]["maxReplicas"]
    assert "replicas" not in by_kind(apps, "Deployment")["gateway"]["spec"]
    budgets = by_kind(apps, "PodDisruptionBudget")
    for name in SERVICES:
        selector = budgets[name]["spec"]["selector"]["matchLabels"]
        labels = by_kind(apps, "Deployment")[name]["spec"]["template"]["metadata"]["labels"]
        assert selector.items() <= labels.items()
        assert budgets[name]["spec"].get("maxUnavailable") == 1  # drains work at 1 replica too
    namespaces = {o["metadata"].get("namespace") for o in apps}
    assert len(namespaces) == 1 and None not in namespaces


def test_migration_jobs_run_the_same_image_once(rendered):
    apps, jobs = rendered
    deployments = by_kind(apps, "Deployment")
    assert sorted(by_kind(jobs, "Job")) == sorted(f"migrate-{s}" for s in SERVICES)
    for name in SERVICES:
        job = by_kind(jobs, "Job")[f"migrate-{name}"]
        pod = job["spec"]["template"]["spec"]
        (container,) = pod["containers"]
        assert container["command"] == ["python", "-m", "mpp_chassis.migrate", name]
        app_image = deployments[name]["spec"]["template"]["spec"]["containers"][0]["image"]
        assert container["image"] == app_image
        assert pod["restartPolicy"] == "Never" and pod["securityContext"]["runAsNonRoot"]
        # a failed migration fails fast: one retry, and over within `kubectl wait`'s 10 minutes
        assert job["spec"]["backoffLimit"] <= 1
        assert job["spec"]["activeDeadlineSeconds"] <= 600
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        assert job["metadata"]["namespace"] == deployments[name]["metadata"]["namespace"]


def test_config_map_and_secrets_cover_what_the_services_read(rendered):
    apps, jobs = rendered
    config = by_kind(apps, "ConfigMap")["mpp-config"]["data"]
    secrets = {s["metadata"]["name"]: s["stringData"] for s in example_secrets()}
    assert not SECRET_NAMES.search(" ".join(config)), "no secret in the ConfigMap"
    for service in SERVICES:
        for var in startup_secrets(service, config):
            assert var in secrets[f"{service}-secrets"], f"{service} needs {var}: add it"
    used = set()
    for container in containers([*apps, *jobs]):
        for ref in secret_refs(container).values():
            assert ref["key"] in secrets[ref["name"]], f"{ref}: add it to secret.example.yaml"
            used.add((ref["name"], ref["key"]))
    documented = {(name, key) for name, data in secrets.items() for key in data}
    assert documented == used, "secret.example.yaml holds exactly the keys the pods read"
    assert by_kind(apps, "Secret") == {}, "Secrets are created out of band, never committed"


def containers(objects: list[dict]):
    for obj in objects:
        if obj["kind"] in ("Deployment", "Job"):
            yield from obj["spec"]["template"]["spec"]["containers"]


def secret_refs(container: dict) -> dict[str, dict]:
    return {
        e["name"]: e["valueFrom"]["secretKeyRef"]
        for e in container.get("env", [])
        if "secretKeyRef" in e.get("valueFrom", {})
    }


def test_every_secret_is_a_required_key_of_the_secret(rendered):
    """A key missing from mpp-secrets must stop the pod (CreateContainerConfigError), not leave a
    service on a default: no ``envFrom`` of a Secret (it skips absent keys), no ``optional``, and
    each service gets by secretKeyRef every secret its deployed-mode check needs."""
    apps, jobs = rendered
    config = by_kind(apps, "ConfigMap")["mpp-config"]["data"]
    for container in containers([*apps, *jobs]):
        for source in container.get("envFrom", []):
            assert "secretRef" not in source, container["name"]
        for entry in container.get("env", []):
            if SECRET_NAMES.search(entry["name"]) or entry["name"] == "REDIS_PASSWORD":
                assert "value" not in entry, f"{entry['name']} given in plain text"
        for name, ref in secret_refs(container).items():
            assert ref.get("optional") is not True, name
            assert ref["key"] == name or name == "REDISCLI_AUTH", name
    deployments = by_kind(apps, "Deployment")
    for service in SERVICES:
        (container,) = deployments[service]["spec"]["template"]["spec"]["containers"]
        needed = set(startup_secrets(service, config))
        assert needed <= set(secret_refs(container)), (service, needed)
        job = by_kind(jobs, "Job")[f"migrate-{service}"]
        (migrate,) = job["spec"]["template"]["spec"]["containers"]
        assert set(secret_refs(migrate)) == {f"{service.upper()}_DB_URL"}  # only what it uses


def test_every_overlay_runs_deployed_with_a_real_payment_provider(rendered, monkeypatch):
    """MALL_ENVIRONMENT=deployed (the services then refuse default secrets), no manifest sets
    PAYMENT_PROVIDER=simulator, and the settings pass the services' own deployed-mode checks."""
    apps, jobs = rendered
    config = by_kind(apps, "ConfigMap")["mpp-config"]["data"]
    assert config["MALL_ENVIRONMENT"] == "deployed"
    assert config["PAYMENT_PROVIDER"] == "midtrans"  # payment's own default is the simulator
    for container in containers([*apps, *jobs]):
        for entry in container.get("env", []):
            assert entry["name"] not in ("MALL_ENVIRONMENT", "PAYMENT_PROVIDER"), entry
    for obj in [*apps, *jobs]:
        assert "simulator" not in yaml.safe_dump(obj).lower(), obj["metadata"]["name"]
    for service in SERVICES:
        assert startup_refusals(service, config, monkeypatch) == [], service
    refused = startup_refusals("payment", {**config, "PAYMENT_PROVIDER": "simulator"}, monkeypatch)
    assert any("PAYMENT_PROVIDER=simulator" in r for r in refused)  # the check can fail


def test_the_gateway_counts_rate_limits_in_a_hardened_redis(rendered):
    apps, _ = rendered
    deployments = by_kind(apps, "Deployment")
    (gateway,) = deployments["gateway"]["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e for e in gateway["env"]}
    assert env["REDIS_URL"]["value"] == "redis://:$(REDIS_PASSWORD)@redis:6379/0"
    names = [e["name"] for e in gateway["env"]]
    assert names.index("REDIS_PASSWORD") < names.index("REDIS_URL")  # $(...) needs it first
    config = by_kind(apps, "ConfigMap")["mpp-config"]["data"]
    assert config["TRUSTED_PROXIES"], "the ingress's addresses (site-specific)"
    service = by_kind(apps, "Service")["redis"]["spec"]
    assert service["type"] == "ClusterIP" and service["ports"][0]["port"] == 6379
    pod = deployments["redis"]["spec"]["template"]["spec"]
    assert service["selector"].items() <= (
        deployments["redis"]["spec"]["template"]["metadata"]["labels"].items()
    )
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["automountServiceAccountToken"] is False
    containers = {c["name"]: c for c in pod["containers"]}
    assert sorted(containers) == ["exporter", "redis"]  # redis_exporter for MppRedisDown
    for container in containers.values():
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        assert container["securityContext"]["allowPrivilegeEscalation"] is False
        assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
        resources = container["resources"]
        assert set(resources["requests"]) == set(resources["limits"]) == {"cpu", "memory"}
        assert "livenessProbe" in container and "readinessProbe" in container
        assert not container["image"].endswith(":latest") and ":" in container["image"]
    redis, exporter = containers["redis"], containers["exporter"]
    assert exporter["ports"] == [{"name": "metrics", "containerPort": 9121}]
    assert {"name": "REDIS_ADDR", "value": "redis://127.0.0.1:6379"} in exporter["env"]
    args = redis["args"]
    assert args[args.index("--requirepass") + 1] == "$(REDIS_PASSWORD)"
    assert not redis["image"].endswith(":latest") and ":" in redis["image"]
    policy = by_kind(apps, "NetworkPolicy")["redis"]
    assert policy["spec"]["podSelector"]["matchLabels"] == {"app.kubernetes.io/name": "redis"}
    clients, scrape = policy["spec"]["ingress"]
    gateway = {"app.kubernetes.io/name": "gateway", "app.kubernetes.io/component": "service"}
    assert clients["from"] == [{"podSelector": {"matchLabels": gateway}}]
    assert clients["ports"] == [{"protocol": "TCP", "port": 6379}]
    assert scrape["ports"] == [{"protocol": "TCP", "port": "metrics"}]  # Prometheus, exporter


def test_readme_install_commands_are_the_validated_overlays(readme):
    applied = re.findall(r"kubectl apply -k (\S+)", readme)
    assert applied, "README.md must give the Kubernetes install commands"
    validated = {(K8S / "overlays" / e).resolve() for e in ENVIRONMENTS}
    validated |= {(K8S / "overlays" / e / "migrate").resolve() for e in ENVIRONMENTS}
    for path in applied:
        assert (ROOT / path).resolve() in validated, path
    assert any(p.endswith("/migrate") for p in applied), "migrations run before the rollout"
    first_migrate = min(i for i, p in enumerate(applied) if p.endswith("/migrate"))
    assert first_migrate == 0, "apply the migration Jobs first"


def routed(path: str, pattern: dict) -> bool:
    """Whether an Ingress path of ``pattern`` (Prefix or Exact) sends ``path`` to its backend."""
    prefix = pattern["path"]
    if pattern["pathType"] == "Exact":
        return path == prefix
    return path == prefix or path.startswith(prefix.rstrip("/") + "/")


def gateway_routes() -> set[str]:
    """The paths the gateway serves, as written in its source (``"/v1/…"``, ``"/kiosk"``…)."""
    source = " ".join(
        p.read_text() for p in (ROOT / "services" / "gateway" / "mpp_gateway").rglob("*.py")
    )
    return set(re.findall(r'"(/[a-z][^"\s]*)"', source))


def test_production_exposes_only_the_gateways_public_paths_over_tls(rendered):
    apps, _ = rendered
    ingresses = list(by_kind(apps, "Ingress").values())
    namespace = apps[0]["metadata"]["namespace"]
    if namespace != "mpp":
        assert ingresses == [], "staging is reached as each site chooses"
        return
    (ingress,) = ingresses
    spec = ingress["spec"]
    assert ingress["metadata"]["annotations"]["cert-manager.io/cluster-issuer"]
    (tls,) = spec["tls"]
    assert tls["secretName"]
    paths = []
    for rule in spec["rules"]:
        assert rule["host"] in tls["hosts"], "every host is served over TLS"
        paths += rule["http"]["paths"]
    routes = gateway_routes()
    for pattern in paths:
        assert pattern["backend"] == {"service": {"name": "gateway", "port": {"name": "http"}}}
        assert any(routed(route, pattern) for route in routes), f"{pattern['path']}: no route"
    for internal in ("/metrics", "/healthz", "/readyz"):
        assert internal in routes
        assert not any(routed(internal, p) for p in paths), f"{internal} must not be routed"
    assert any(routed("/v1/display/stream", p) for p in paths)
    assert routed("/metrics", {"path": "/", "pathType": "Prefix"})  # the check can fail
    service = by_kind(apps, "Service")["gateway"]["spec"]
    assert {"name": "http"}.items() <= service["ports"][0].items()


def consumed_queues(service: str) -> set[str]:
    """The queues a service's replicas consume, named by nameko itself: its RPC queue, and each
    event handler's (nameko's ``EventHandler.setup`` names it; nothing here talks to a broker)."""
    import importlib

    from nameko.containers import ServiceContainer
    from nameko.events import EventHandler
    from nameko.rpc import RPC_QUEUE_TEMPLATE, Rpc

    module = importlib.import_module(f"mpp_{service}.service")
    container = ServiceContainer(
        getattr(module, f"{service.capitalize()}Service"), {"AMQP_URI": "memory://"}
    )
    names = set()
    for entrypoint in container.entrypoints:
        if isinstance(entrypoint, EventHandler):
            EventHandler.setup(entrypoint)
            names.add(entrypoint.queue.name)
        elif isinstance(entrypoint, Rpc):
            names.add(RPC_QUEUE_TEMPLATE.format(container.service_name))
    return names


def every_queue() -> set[str]:
    """Every queue of the mall's vhost: what each service consumes, an RPC reply queue each, the
    dead letters and the retry delay queues."""
    from mpp_chassis.messaging import DEAD_LETTER_QUEUE, delay_queue

    queues = {DEAD_LETTER_QUEUE, delay_queue(1000).name, delay_queue(60_000).name}
    for service in SERVICES:
        queues |= consumed_queues(service) | {f"rpc.reply-{service}-0f1e2d3c"}
    return queues


def test_production_scales_the_workers_on_their_whole_backlog_with_keda(rendered):
    """Issue 21: KEDA counted the RPC queue only, so a backlog of events (a burst of
    ticket_completed for payment and rating) never added a replica. Each ScaledObject now sums
    the ready messages of every queue its service consumes, and of no other service's: the
    regular expression is checked, as RabbitMQ applies it (unanchored, case-insensitive),
    against the queue names nameko gives the services' real entry points."""
    apps, _ = rendered
    scaled = by_kind(apps, "ScaledObject")
    deployments = by_kind(apps, "Deployment")
    if apps[0]["metadata"]["namespace"] != "mpp":
        assert scaled == {}, "staging runs fixed replicas (no KEDA needed there)"
        return
    authentications = by_kind(apps, "TriggerAuthentication")
    queues = every_queue()
    assert sorted(scaled) == ["payment", "queue", "rating"]
    for name, obj in scaled.items():
        spec = obj["spec"]
        assert spec["scaleTargetRef"] == {"name": name}
        assert "replicas" not in deployments[name]["spec"], f"{name}: KEDA owns replicas"
        assert 2 <= spec["minReplicaCount"] < spec["maxReplicaCount"]  # PDB: one at a time
        (trigger,) = spec["triggers"]
        meta = trigger["metadata"]
        assert trigger["type"] == "rabbitmq" and meta["mode"] == "QueueLength"
        assert int(meta["value"]) > 0
        # a regular expression over queue names needs the management API
        assert meta["protocol"] == "http" and meta["useRegex"] == "true"
        assert meta["operation"] == "sum" and meta["excludeUnacknowledged"] == "true"
        host = urlsplit(meta["host"])
        # KEDA runs in its own namespace: the Service's name must carry the mall's
        assert (host.scheme, host.hostname, host.port) == ("http", "mpp-rabbitmq.mpp.svc", 15672)
        assert host.path == "/mpp" and host.username is None, "the vhost; no password here"
        pattern = re.compile(meta["queueName"], re.IGNORECASE)
        counted = {queue for queue in queues if pattern.search(queue)}
        own = consumed_queues(name)
        assert any(q.startswith("evt-") for q in own) and f"rpc-{name}" in own
        assert counted == own, f"{name}: counts {sorted(counted ^ own)} wrongly"
        auth = authentications[trigger["authenticationRef"]["name"]]["spec"]
        assert auth["secretTargetRef"] == [
            {"parameter": "username", "name": "mpp-rabbitmq-keda", "key": "username"},
            {"parameter": "password", "name": "mpp-rabbitmq-keda", "key": "password"},
        ]


def test_keda_reads_the_queues_as_a_user_that_can_neither_publish_nor_consume(rendered):
    """The management API needs a tagged user; not the mall's (AMQP only, full rights on its
    vhost): KEDA's own, with the `management` tag and, on the mall's vhost, the right to enter
    and list but to configure, write and read nothing."""
    apps, _ = rendered
    if apps[0]["metadata"]["namespace"] != "mpp":
        return
    users, permissions = by_kind(apps, "User"), by_kind(apps, "Permission")
    assert list(users) == ["mpp-keda"] and list(permissions) == ["mpp-keda"]
    user, permission = users["mpp-keda"]["spec"], permissions["mpp-keda"]["spec"]
    assert user["tags"] == ["management"]
    assert user["importCredentialsSecret"] == {"name": "mpp-rabbitmq-keda"}
    assert user["rabbitmqClusterReference"] == {"name": "mpp-rabbitmq"}
    assert permission["userReference"] == {"name": "mpp-keda"} and permission["vhost"] == "mpp"
    rights = permission["permissions"]
    for queue in sorted(every_queue()) + ["amq.default", "nameko-rpc", "queue.events"]:
        assert not any(re.search(rights[kind], queue) for kind in rights), queue
    assert sorted(rights) == ["configure", "read", "write"]
