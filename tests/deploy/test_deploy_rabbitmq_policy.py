"""Dead-lettering at least once on the event queues (issue 16): the policy is declared in both
deployments — the Messaging Topology Operator's Policy on Kubernetes, a one-shot job in compose —
with the same definition, and a real RabbitMQ accepts it and applies it to a handler queue."""

from __future__ import annotations

import json
import re
from urllib.parse import quote

import pytest
import requests
import yaml
from kombu import Connection, Queue

from tests.deploy.conftest import DEPLOY
from tests.support import infra

pytestmark = pytest.mark.integration


def kubernetes_policy() -> dict:
    docs = yaml.safe_load_all((DEPLOY / "k8s" / "operators" / "rabbitmq-topology.yaml").read_text())
    (policy,) = [d for d in docs if d and d["kind"] == "Policy"]
    return policy["spec"]


def compose_policy(compose: dict) -> dict:
    job = compose["services"]["rabbitmq-policies"]
    command = job["entrypoint"][-1]
    assert job["image"] == compose["services"]["rabbitmq"]["image"]
    assert job["depends_on"]["rabbitmq"]["condition"] == "service_healthy"
    return {
        "name": re.search(r"(?<![\w-])name=(\S+)", command).group(1),
        "pattern": re.search(r"pattern='([^']+)'", command).group(1),
        "applyTo": re.search(r"apply-to=(\S+)", command).group(1),
        "definition": json.loads(job["environment"]["MPP_POLICY"]),
    }


def test_both_deployments_declare_the_same_policy(compose):
    k8s = kubernetes_policy()
    assert {key: k8s[key] for key in ("name", "pattern", "applyTo", "definition")} == (
        compose_policy(compose)
    )
    assert k8s["definition"] == {
        "dead-letter-strategy": "at-least-once",
        "overflow": "reject-publish",  # at-least-once falls back to at-most-once without it
    }


def test_rabbitmq_applies_the_policy_to_an_event_queue(vhost):
    """On the RabbitMQ of the tests. The deployments run 3.13, where ``apply-to`` may name
    quorum queues alone; a broker before 3.12 knows only ``queues``, which is then used (the
    definition, what this test is about, is the same)."""
    policy = kubernetes_policy()
    version = requests.get(f"{infra.RABBIT_API}/overview", timeout=5).json()["rabbitmq_version"]
    modern = tuple(int(p) for p in version.split(".")[:2]) >= (3, 12)
    api = f"{infra.RABBIT_API}/policies/{quote(vhost, safe='')}/{policy['name']}"
    body = {
        "pattern": policy["pattern"],
        "apply-to": policy["applyTo"] if modern else "queues",
        "definition": policy["definition"],
    }
    answer = requests.put(api, json=body, timeout=5)
    assert answer.status_code in (201, 204), answer.text  # a key RabbitMQ does not know: 400
    name = "evt-queue-ticket_completed--payment.handle_ticket_completed"
    with Connection(infra.uri_for_vhost(vhost)) as conn:
        Queue(name, queue_arguments={"x-queue-type": "quorum"})(conn.channel()).declare()

    def effective() -> dict | None:
        info = infra.queue_info(vhost, name)
        return info.get("effective_policy_definition") or None

    applied = infra.wait_until(effective, timeout=20, message="policy applied")
    assert applied == policy["definition"]
