"""Pin the third-party images the Kubernetes base runs (Redis and its exporter) by digest in an
overlay's ``images:``, as production pins the mall's own (docs/operations.md, "Pin the images").

The base names them by exact tag; a tag can be pushed again, a digest cannot. Each image is
resolved, as the base names it (``redis:7.4.1-bookworm``), to the digest its registry serves for
that tag now (for a multi-platform image, the index's digest), by ``crane digest`` or, without
crane, ``skopeo inspect --raw`` (the digest is the sha256 of those bytes). So it needs registry
access, and runs where an operator has it; ``--digests`` takes the digests from a JSON file
instead (``{"redis:7.4.1-bookworm": "sha256:…"}``: a mirror's list, or the tests).

    python deploy/pin_images.py [--overlay deploy/k8s/overlays/production] [--digests FILE]

Each run replaces the entries it wrote before and leaves the others (the mall's images) and
every comment as they are. Re-run it after changing a third-party tag in the base.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

K8S = Path(__file__).resolve().parent / "k8s"
DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
MARK = "(deploy/pin_images.py)"


def split(image: str) -> tuple[str, str]:
    """``name, tag`` of ``image`` (a registry's port is not a tag)."""
    name, _, tag = image.rpartition(":")
    if not name or "/" in tag:
        raise SystemExit(f"{image}: no tag to pin (the base names every image by exact tag)")
    return name, tag


def third_party_images(base: Path = K8S / "base") -> list[str]:
    """The images, ``name:tag``, of the base's pod templates that are not the mall's own."""
    found = set()
    for resource in yaml.safe_load((base / "kustomization.yaml").read_text())["resources"]:
        for doc in yaml.safe_load_all((base / resource).read_text()):
            pod = ((doc or {}).get("spec") or {}).get("template", {}).get("spec") or {}
            for container in pod.get("containers", []) + pod.get("initContainers", []):
                if not split(container["image"])[0].startswith("mpp-"):
                    found.add(container["image"])
    return sorted(found)


def registry_digest(image: str) -> str:
    """The digest the registry serves for ``image`` now: crane's, or the sha256 of skopeo's raw
    manifest (the same thing, by definition of a digest)."""
    if shutil.which("crane"):
        run = subprocess.run(["crane", "digest", image], capture_output=True, text=True)
        if run.returncode != 0:
            raise SystemExit(f"crane digest {image}: {run.stderr.strip()}")
        return run.stdout.strip()
    if shutil.which("skopeo"):
        run = subprocess.run(
            ["skopeo", "inspect", "--raw", f"docker://{image}"], capture_output=True
        )
        if run.returncode != 0:
            raise SystemExit(f"skopeo inspect {image}: {run.stderr.decode().strip()}")
        return "sha256:" + hashlib.sha256(run.stdout).hexdigest()
    raise SystemExit("needs crane or skopeo on PATH (and registry access), or --digests FILE")


def rewrite(text: str, pins: dict[str, str]) -> str:
    """``text`` (a kustomization.yaml) with one ``images:`` entry per pinned image, ``name``
    and ``digest``, in place of any entry for the same name; nothing else changed."""
    names = {split(image)[0] for image in pins}
    lines = text.splitlines(keepends=True)
    if "images:\n" not in lines:
        lines += ([] if not lines or lines[-1].endswith("\n") else ["\n"]) + ["images:\n"]
    start = lines.index("images:\n") + 1
    end = next(
        (i for i in range(start, len(lines)) if lines[i][:1] not in (" ", "#", "\n")),
        len(lines),
    )
    kept, dropping = [], False
    for line in lines[start:end]:
        entry = re.match(r"  - name: (\S+)", line)
        if entry:
            dropping = entry.group(1) in names
        elif not line.startswith("    "):
            dropping = False
        if not dropping:
            kept.append(line)
    added = []
    for image, digest in sorted(pins.items()):
        name, _ = split(image)
        added += [f"  - name: {name}  # {image} {MARK}\n", f"    digest: {digest}\n"]
    return "".join(lines[:start] + kept + added + lines[end:])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--overlay", type=Path, default=K8S / "overlays" / "production")
    parser.add_argument("--digests", type=Path, help="JSON: image -> digest, no registry asked")
    args = parser.parse_args(argv)
    base = (args.overlay / "../../base").resolve()
    given = json.loads(args.digests.read_text()) if args.digests else None
    pins = {}
    for image in third_party_images(base):
        if given is not None and image not in given:
            raise SystemExit(f"{image}: not in {args.digests}")
        digest = given[image] if given is not None else registry_digest(image)
        if not DIGEST.fullmatch(digest) or set(digest[7:]) == {"0"}:
            raise SystemExit(f"{image}: {digest!r} is not a sha256 digest")
        pins[image] = digest
    path = args.overlay / "kustomization.yaml"
    path.write_text(rewrite(path.read_text(), pins))
    for image, digest in sorted(pins.items()):
        print(f"{image} -> {split(image)[0]}@{digest}")


if __name__ == "__main__":
    main(sys.argv[1:])
