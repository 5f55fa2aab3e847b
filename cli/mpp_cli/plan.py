"""``mpp apply`` / ``mpp diff``: compare the mall file with what the gateway answers, then change
only what differs. Identity: an agency by code, a service by code within its agency, a counter
by name within its agency, a key by role, label and scope. Nothing is deleted unless ``prune``:
then services absent from the file are unplugged, counters absent are closed (the API keeps
counters) and officer/kiosk/display keys absent are revoked (agency_admin keys never are)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mpp_cli.client import Client
from mpp_cli.manifest import key_identity, key_scope

SERVICE_FIELDS = (
    "name",
    "fee_idr",
    "sla_minutes",
    "prefix",
    "requirements",
    "daily_quota",
    "opening_hours",
    "booking",
)
BOOKING_DEFAULTS = {"daily_quota": None, "early_minutes": 30, "late_minutes": 15}
PRUNABLE_ROLES = ("officer", "kiosk", "display")


@dataclass
class Change:
    op: str  # "+" create, "~" update, "-" unplug/close/revoke, "!" cannot change (a warning)
    kind: str  # agency, service, counter, key
    name: str
    details: list[str] = field(default_factory=list)

    @property
    def drift(self) -> bool:
        return self.op != "!"

    def as_dict(self) -> dict:
        return {"op": self.op, "kind": self.kind, "name": self.name, "details": self.details}


@dataclass
class Result:
    changes: list[Change] = field(default_factory=list)
    keys: list[dict] = field(default_factory=list)  # secrets issued now (shown once)

    @property
    def drift(self) -> bool:
        return any(change.drift for change in self.changes)


def _service_value(service: dict, name: str) -> Any:
    value = service.get(name)
    if name == "requirements":
        return list(value or [])
    if name == "booking" and value is not None:
        return {**BOOKING_DEFAULTS, **value}
    if name == "opening_hours" and value is not None:
        return [{"opens": p["opens"], "closes": p["closes"]} for p in value]
    return value


def _wanted_service(service: dict) -> dict:
    """The file's service as the API would hold it (omitted optional fields at their default)."""
    return {name: _service_value(service, name) for name in SERVICE_FIELDS}


def _show(value: Any) -> str:
    return "null" if value is None else str(value)


class Reconciler:
    def __init__(self, client: Client, execute: bool, prune: bool):
        self.client, self.execute, self.prune = client, execute, prune
        self.result = Result()

    def change(self, op: str, kind: str, name: str, details: list[str] | None = None) -> None:
        self.result.changes.append(Change(op, kind, name, details or []))

    def run(self, data: dict) -> Result:
        existing = {a["code"]: a for a in self.client.all("/v1/agencies")}
        for agency in data.get("agencies") or []:
            self.agency(agency, existing.get(agency["code"]))
        if self.prune:
            listed = {a["code"] for a in data.get("agencies") or []}
            for code in sorted(set(existing) - listed):
                self.change("!", "agency", code, ["not in the file; the API deletes no agency"])
        return self.result

    def agency(self, wanted: dict, current: dict | None) -> None:
        code = wanted["code"]
        if current is None:
            self.change("+", "agency", code, [wanted["name"]])
            agency_id = None
            if self.execute:
                created = self.client.post("/v1/agencies", {"code": code, "name": wanted["name"]})
                agency_id = created["id"]
                key = created["admin_api_key"]
                self.result.keys.append({"agency": code, **_key_row(key)})
            services, counters, keys = [], [], []
        else:
            agency_id = current["id"]
            if current["name"] != wanted["name"]:
                detail = f"name {current['name']!r} in the mall, {wanted['name']!r} in the file"
                self.change("!", "agency", code, [detail + " (the API renames no agency)"])
            services = self.client.all("/v1/services", {"agency": agency_id})
            counters = self.client.all(f"/v1/agencies/{agency_id}/counters")
            keys = [
                k
                for k in self.client.all(f"/v1/agencies/{agency_id}/api-keys")
                if not k.get("revoked_at")
            ]
        ids = self.services(code, agency_id, wanted.get("services") or [], services)
        self.counters(code, agency_id, wanted.get("counters") or [], counters, ids)
        self.keys(code, agency_id, wanted.get("keys") or [], keys)

    def services(self, code: str, agency_id, wanted: list[dict], current: list[dict]) -> dict:
        """Returns service code → id (None for one a dry run would create)."""
        by_code = {s["code"]: s for s in current}
        ids: dict[str, str | None] = {s["code"]: s["id"] for s in current}
        for service in wanted:
            name = f"{code}/{service['code']}"
            want = _wanted_service(service)
            have = by_code.get(service["code"])
            if have is None:
                self.change("+", "service", name, [f"{service['name']}, Rp {service['fee_idr']:,}"])
                if self.execute:
                    body = {"code": service["code"], **want}
                    if body["booking"] is None:
                        body.pop("booking")
                    created = self.client.post(f"/v1/agencies/{agency_id}/services", body)
                    ids[service["code"]] = created["id"]
                else:
                    ids[service["code"]] = None
                continue
            differs = {n: want[n] for n in SERVICE_FIELDS if _service_value(have, n) != want[n]}
            if differs:
                details = [
                    f"{n}: {_show(_service_value(have, n))} → {_show(v)}"
                    for n, v in differs.items()
                ]
                self.change("~", "service", name, details)
                if self.execute:
                    self.client.patch(f"/v1/agencies/{agency_id}/services/{have['id']}", differs)
        if self.prune:
            listed = {s["code"] for s in wanted}
            for service in current:
                if service["code"] not in listed:
                    self.change("-", "service", f"{code}/{service['code']}", ["unplug"])
                    if self.execute:
                        path = f"/v1/agencies/{agency_id}/services/{service['id']}"
                        self.client.delete(path)
        return ids

    def counters(self, code, agency_id, wanted: list[dict], current: list[dict], ids) -> None:
        by_name = {c["name"]: c for c in current}
        code_of = {v: k for k, v in ids.items() if v}
        for counter in wanted:
            name = f"{code}/{counter['name']}"
            is_open = counter.get("is_open", True)
            have = by_name.get(counter["name"])
            if have is None:
                self.change("+", "counter", name, [", ".join(counter["services"])])
                if self.execute:
                    body = {
                        "name": counter["name"],
                        "service_ids": [ids[c] for c in counter["services"]],
                        "is_open": is_open,
                    }
                    self.client.post(f"/v1/agencies/{agency_id}/counters", body)
                continue
            have_codes = sorted(code_of.get(i, i) for i in have["service_ids"])
            body, details = {}, []
            if have_codes != sorted(counter["services"]):
                body["service_ids"] = [ids[c] for c in counter["services"]]
                details.append(
                    f"services: {', '.join(have_codes)} → {', '.join(counter['services'])}"
                )
            if have["is_open"] != is_open:
                body["is_open"] = is_open
                details.append(f"is_open: {have['is_open']} → {is_open}")
            if body:
                self.change("~", "counter", name, details)
                if self.execute:
                    self.client.patch(f"/v1/agencies/{agency_id}/counters/{have['id']}", body)
        if self.prune:
            listed = {c["name"] for c in wanted}
            for counter in current:
                if counter["name"] not in listed and counter["is_open"]:
                    self.change("-", "counter", f"{code}/{counter['name']}", ["close"])
                    if self.execute:
                        path = f"/v1/agencies/{agency_id}/counters/{counter['id']}"
                        self.client.patch(path, {"is_open": False})

    def keys(self, code, agency_id, wanted: list[dict], current: list[dict]) -> None:
        have = {key_identity(k) for k in current}
        for key in wanted:
            ident = key_identity(key)
            if ident in have:
                continue
            role, label, scope = ident
            self.change("+", "key", f"{code}/{role}/{label}", [f"scope {scope}"])
            if self.execute:
                body = {"role": role, "label": label}
                if key.get("scope"):
                    body["scope"] = key_scope(key)
                issued = self.client.post(f"/v1/agencies/{agency_id}/api-keys", body)
                self.result.keys.append({"agency": code, **_key_row(issued)})
        if self.prune:
            listed = {key_identity(k) for k in wanted}
            for key in current:
                if key["role"] in PRUNABLE_ROLES and key_identity(key) not in listed:
                    self.change("-", "key", f"{code}/{key['role']}/{key['label']}", ["revoke"])
                    if self.execute:
                        self.client.delete(f"/v1/agencies/{agency_id}/api-keys/{key['id']}")


def _key_row(key: dict) -> dict:
    return {k: key.get(k) for k in ("id", "role", "label", "scope", "key")}


def reconcile(client: Client, data: dict, *, execute: bool, prune: bool = False) -> Result:
    return Reconciler(client, execute, prune).run(data)
