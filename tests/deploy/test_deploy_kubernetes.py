"""deploy/k8s: each overlay renders (kubectl kustomize, or the documented fallback renderer) into
manifests that validate against the Kubernetes schemas offline and hold the hardening rules."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from tests.deploy.conftest import DEPLOY, PORTS, ROOT, SECRET_NAMES, SERVICES, config_vars
from tests.deploy.kustomize_lite import render as render_lite

K8S = DEPLOY / "k8s"
ENVIRONMENTS = ("staging", "production")
KUBERNETES_VERSIONS = ("1.29.0", "1.33.0")


def kustomize(directory: Path) -> list[dict]:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        return render_lite(directory)
    out = subprocess.run(
        [kubectl, "kustomize", str(directory)], capture_output=True, text=True, check=True
    ).stdout
    return [doc for doc in yaml.safe_load_all(out) if doc]


def by_kind(objects: list[dict], kind: str) -> dict[str, dict]:
    return {o["metadata"]["name"]: o for o in objects if o["kind"] == kind}


@pytest.fixture(scope="module", params=ENVIRONMENTS)
def rendered(request) -> tuple[list[dict], list[dict]]:
    overlay = K8S / "overlays" / request.param
    return kustomize(overlay), kustomize(overlay / "migrate")


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_manifests_validate_against_kubernetes_schemas(rendered, version):
    apps, jobs = rendered
    for obj in [*apps, *jobs, yaml.safe_load((K8S / "secret.example.yaml").read_text())]:
        kubernetes_validate.validate(obj, version, strict=True)
    broken = {**apps[0], "spec": {"replicas": "two"}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, version, strict=True)


def test_a_hardened_deployment_per_service(rendered):
    apps, _ = rendered
    deployments = by_kind(apps, "Deployment")
    assert sorted(deployments) == sorted(SERVICES)
    for name, deployment in deployments.items():
        pod = deployment["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["runAsUser"] == 10001  # the image's user
        (container,) = pod["containers"]
        assert container["image"].rsplit("/", 1)[-1] == f"mpp-{name}:0.1.0"
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
        refs = {next(iter(ref.values()))["name"] for ref in container["envFrom"]}
        assert refs == {"mpp-config", "mpp-secrets"}
        assert "command" not in container and "args" not in container
        assert pod["terminationGracePeriodSeconds"] >= 30


def test_gateway_service_autoscaler_and_disruption_budgets(rendered):
    apps, _ = rendered
    services = by_kind(apps, "Service")
    assert list(services) == ["gateway"]
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
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        assert job["metadata"]["namespace"] == deployments[name]["metadata"]["namespace"]


def test_config_map_and_secret_cover_what_the_services_read(rendered):
    apps, _ = rendered
    config = by_kind(apps, "ConfigMap")["mpp-config"]["data"]
    secret = yaml.safe_load((K8S / "secret.example.yaml").read_text())["stringData"]
    assert not SECRET_NAMES.search(" ".join(config)), "no secret in the ConfigMap"
    for service in SERVICES:
        for var in config_vars(service):
            if SECRET_NAMES.search(var):
                assert var in secret, f"{service} reads {var}: add it to secret.example.yaml"
    assert by_kind(apps, "Secret") == {}, "the Secret is created out of band, never committed"


def test_fallback_renderer_matches_kubectl():
    if shutil.which("kubectl") is None:
        pytest.skip("kubectl is not installed; the fallback renderer is what the checks use")
    key = lambda o: (o["kind"], o["metadata"]["name"])  # noqa: E731
    for env in ENVIRONMENTS:
        for directory in (K8S / "overlays" / env, K8S / "overlays" / env / "migrate"):
            assert sorted(kustomize(directory), key=key) == sorted(
                render_lite(directory), key=key
            ), directory


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
