"""deploy/k8s/operators: the RabbitMQ the operators run is the one compose runs, and the mall
reaches it as its own user on its own vhost, with permissions there only (Messaging Topology
Operator), as every service's AMQP_URI says."""

from __future__ import annotations

from urllib.parse import unquote, urlsplit

import yaml

from tests.deploy.conftest import DEPLOY, SERVICES

OPERATORS = DEPLOY / "k8s" / "operators"


def resources() -> dict[str, dict[str, dict]]:
    """``kind -> name -> object`` of what operators/ declares."""
    found: dict[str, dict[str, dict]] = {}
    for path in sorted(OPERATORS.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc:
                found.setdefault(doc["kind"], {})[doc["metadata"]["name"]] = doc
    return found


def amqp_uris() -> dict[str, str]:
    docs = yaml.safe_load_all((DEPLOY / "k8s" / "secret.example.yaml").read_text())
    return {
        d["metadata"]["name"]: d["stringData"]["AMQP_URI"]
        for d in docs
        if d and "AMQP_URI" in d["stringData"]
    }


def test_rabbitmq_runs_the_version_compose_runs(compose):
    (cluster,) = resources()["RabbitmqCluster"].values()
    assert cluster["spec"]["image"] == compose["services"]["rabbitmq"]["image"]
    assert not cluster["spec"]["image"].endswith(":latest")


def test_the_mall_uses_its_own_vhost_and_user_with_rights_there_only():
    found = resources()
    (cluster,) = found["RabbitmqCluster"]
    (vhost,) = found["Vhost"].values()
    (user,) = found["User"].values()
    (permission,) = found["Permission"].values()
    for obj in (vhost, user, permission):
        assert obj["apiVersion"] == "rabbitmq.com/v1beta1"
        assert obj["spec"]["rabbitmqClusterReference"] == {"name": cluster}
    assert permission["spec"]["vhost"] == vhost["spec"]["name"] != "/"
    assert permission["spec"]["userReference"] == {"name": user["metadata"]["name"]}
    assert user["spec"]["tags"] == [], "AMQP only: no management or administrator tag"
    assert "importCredentialsSecret" in user["spec"], "the password is created out of band"
    uris = amqp_uris()
    assert len(uris) == 4, uris  # one per service
    for secret, uri in uris.items():
        parts = urlsplit(uri)
        assert parts.hostname == cluster and parts.port == 5672, secret
        assert unquote(parts.path[1:]) == vhost["spec"]["name"], f"{secret}: vhost"
        assert parts.username == "mpp", f"{secret}: the topology's user"


def db_urls() -> dict[str, str]:
    docs = yaml.safe_load_all((DEPLOY / "k8s" / "secret.example.yaml").read_text())
    return {
        key.removesuffix("_DB_URL").lower(): value
        for d in docs
        if d
        for key, value in d["stringData"].items()
        if key.endswith("_DB_URL")
    }


def test_each_service_has_its_database_and_role_declared_not_made_by_hand():
    """CloudNativePG keeps one role (``managed.roles``, password from a Secret) and one database
    (a ``Database`` object) per service, as each service's *_DB_URL names them."""
    found = resources()
    (cluster,) = found["Cluster"].values()
    roles = {r["name"]: r for r in cluster["spec"]["managed"]["roles"]}
    databases = {d["spec"]["name"]: d["spec"] for d in found["Database"].values()}
    urls = db_urls()
    assert sorted(urls) == sorted(SERVICES)
    for service, url in urls.items():
        parts = urlsplit(url)
        name, user = parts.path.lstrip("/"), parts.username
        assert databases[name]["owner"] == user, f"{service}: database {name} owned by {user}"
        assert databases[name]["cluster"] == {"name": cluster["metadata"]["name"]}
        assert databases[name]["databaseReclaimPolicy"] == "retain"  # deleting it keeps data
        role = roles[user]
        assert role["login"] and role["ensure"] == "present" and not role.get("superuser")
        assert role["passwordSecret"]["name"] == f"mpp-postgres-{user}"
    initdb = cluster["spec"]["bootstrap"]["initdb"]
    assert initdb["secret"] == roles[initdb["owner"]]["passwordSecret"]


def test_production_postgres_is_backed_up_to_object_storage_every_night():
    found = resources()
    (cluster,) = found["Cluster"].values()
    backup = cluster["spec"]["backup"]
    store = backup["barmanObjectStore"]
    assert store["destinationPath"].startswith("s3://") and store["s3Credentials"]
    assert backup["retentionPolicy"].endswith("d")
    (scheduled,) = found["ScheduledBackup"].values()
    assert scheduled["spec"]["cluster"] == {"name": cluster["metadata"]["name"]}
    assert scheduled["spec"]["method"] == "barmanObjectStore"
    fields = scheduled["spec"]["schedule"].split()
    assert len(fields) == 6 and fields[3:] == ["*", "*", "*"], "CloudNativePG: seconds first, daily"
