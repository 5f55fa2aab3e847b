"""A small Kustomize renderer for the features ``deploy/k8s`` uses, for machines without kubectl.

``kubectl kustomize`` is preferred when it is installed; this renderer is the fallback so the
static checks run anywhere, and a test compares both where kubectl exists. Supported, and nothing
more: ``resources`` (files and directories holding a kustomization), ``namespace``, ``patches``
given by ``path`` (strategic merge: maps merge, lists of named maps merge by ``name``, other lists
are replaced; the target is the resource of the patch's kind and name), ``replicas`` and
``images`` (``newName``/``newTag``). Anything else raises, so a kustomization that grows a new
feature cannot be validated silently wrong.
"""

from __future__ import annotations

import copy
from pathlib import Path

import yaml

SUPPORTED = {"apiVersion", "kind", "resources", "namespace", "patches", "replicas", "images"}
CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition"}


def render(directory: Path) -> list[dict]:
    directory = Path(directory)
    kustomization = yaml.safe_load((directory / "kustomization.yaml").read_text())
    unknown = set(kustomization) - SUPPORTED
    if unknown:
        raise ValueError(f"{directory}: kustomize_lite does not support {sorted(unknown)}")
    objects: list[dict] = []
    for entry in kustomization.get("resources", []):
        path = (directory / entry).resolve()
        if path.is_dir():
            objects.extend(render(path))
        else:
            objects.extend(d for d in yaml.safe_load_all(path.read_text()) if d)
    for patch_entry in kustomization.get("patches", []):
        if set(patch_entry) != {"path"}:
            raise ValueError(f"{directory}: only `patches: - path:` is supported")
        for patch in yaml.safe_load_all((directory / patch_entry["path"]).read_text()):
            target = _find(objects, patch["kind"], patch["metadata"]["name"])
            merged = _merge(target, patch)
            target.clear()
            target.update(merged)
    for entry in kustomization.get("replicas", []):
        for obj in objects:
            if obj["metadata"]["name"] == entry["name"] and obj["kind"] in (
                "Deployment",
                "StatefulSet",
                "ReplicaSet",
            ):
                obj["spec"]["replicas"] = entry["count"]
    for image in kustomization.get("images", []):
        for obj in objects:
            for container in _containers(obj):
                name, _, tag = container["image"].partition(":")
                if name == image["name"]:
                    container["image"] = (
                        f"{image.get('newName', name)}:{image.get('newTag', tag)}".rstrip(":")
                    )
    if "namespace" in kustomization:
        for obj in objects:
            if obj["kind"] not in CLUSTER_SCOPED:
                obj["metadata"]["namespace"] = kustomization["namespace"]
    return objects


def _find(objects: list[dict], kind: str, name: str) -> dict:
    for obj in objects:
        if obj["kind"] == kind and obj["metadata"]["name"] == name:
            return obj
    raise ValueError(f"patch target {kind}/{name} not found")


def _merge(base, patch):
    if isinstance(base, dict) and isinstance(patch, dict):
        merged = copy.deepcopy(base)
        for key, value in patch.items():
            merged[key] = _merge(base[key], value) if key in base else copy.deepcopy(value)
        return merged
    if _named_list(base) and _named_list(patch):
        merged = copy.deepcopy(base)
        for item in patch:
            for i, existing in enumerate(merged):
                if existing["name"] == item["name"]:
                    merged[i] = _merge(existing, item)
                    break
            else:
                merged.append(copy.deepcopy(item))
        return merged
    return copy.deepcopy(patch)


def _named_list(value) -> bool:
    return (
        isinstance(value, list)
        and bool(value)
        and all(isinstance(item, dict) and "name" in item for item in value)
    )


def _containers(obj: dict):
    spec = obj.get("spec", {})
    pod = spec.get("template", {}).get("spec", {}) if "template" in spec else spec
    if obj["kind"] == "CronJob":
        pod = spec["jobTemplate"]["spec"]["template"]["spec"]
    yield from pod.get("initContainers", [])
    yield from pod.get("containers", [])
