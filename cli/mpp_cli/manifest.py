"""The mall file (``mpp apply -f mall.yaml``): loaded with line numbers, validated whole.

Every error names its line and field, and all of them are reported at once, before anything
is sent. The rules mirror the gateway's request schemas (its OpenAPI document shows the same
bounds), so a file that validates here is not refused there for its shape.

    agencies:
      - code: DUKCAPIL                     # ^[A-Z0-9-]{2,16}$, the agency's identity
        name: Dinas Kependudukan ...
        services:                          # identity: code within the agency
          - {code: KTP-EL, name: ..., fee_idr: 0, sla_minutes: 60, prefix: A,
             requirements: [...], daily_quota: 400, opening_hours: [{opens, closes}],
             booking: {slot_minutes, capacity, daily_quota, early_minutes, late_minutes}}
        counters:                          # identity: name within the agency
          - {name: Loket 1, services: [KTP-EL], is_open: true}
        keys:                              # identity: role + label (+ scope)
          - {role: officer, label: Loket 1}
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import yaml

AGENCY_CODE = re.compile(r"^[A-Z0-9-]{2,16}$")
SERVICE_CODE = re.compile(r"^[A-Z0-9-]{2,24}$")
PREFIX = re.compile(r"^[A-Z]{1,3}$")
HHMM = re.compile(r"^([01][0-9]|2[0-3]):[0-5][0-9]$")
KEY_ROLES = ("agency_admin", "officer", "kiosk", "display")
SCOPES = ("agency", "mall")


@dataclass
class Problem:
    line: int
    path: str
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.path}: {self.message}"


class ManifestError(Exception):
    def __init__(self, source: str, problems: list[Problem]):
        self.source, self.problems = source, sorted(problems, key=lambda p: p.line)
        lines = "\n".join(f"{source}:{p.line}: {p.path}: {p.message}" for p in self.problems)
        super().__init__(f"{len(problems)} problem(s) in {source}:\n{lines}")


class Located:
    """A loaded value and the line of each of its parts (``lines[path] = 1-based line``)."""

    def __init__(self) -> None:
        self.lines: dict[tuple, int] = {}

    def build(self, node: yaml.Node, path: tuple = ()) -> Any:
        self.lines[path] = node.start_mark.line + 1
        if isinstance(node, yaml.MappingNode):
            out: dict = {}
            for key_node, value_node in node.value:
                key = yaml.safe_load(yaml.serialize(key_node))
                out[key] = self.build(value_node, (*path, key))
            return out
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, (*path, i)) for i, item in enumerate(node.value)]
        return yaml.safe_load(yaml.serialize(node))  # the scalar, resolved as safe_load would

    def line(self, path: tuple) -> int:
        while path and path not in self.lines:
            path = path[:-1]
        return self.lines.get(path, 1)


def _dotted(path: tuple) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(file)"


class _Checker:
    def __init__(self, located: Located):
        self.located = located
        self.problems: list[Problem] = []

    def fail(self, path: tuple, message: str) -> None:
        self.problems.append(Problem(self.located.line(path), _dotted(path), message))

    def mapping(self, value, path, required: tuple, optional: tuple) -> bool:
        if not isinstance(value, dict):
            self.fail(path, "must be a mapping")
            return False
        for name in required:
            if name not in value or value[name] is None:
                self.fail(path, f"missing required field {name!r}")
        for name in value:
            if isinstance(name, str) and name.startswith("x-") and not path:
                continue  # a top-level extension, e.g. an anchor for shared opening hours
            if name not in required + optional:
                known = ", ".join(required + optional)
                self.fail((*path, name), f"unknown field (known: {known})")
        return True

    def text(self, value, path, lo: int, hi: int, pattern: re.Pattern | None = None) -> None:
        if not isinstance(value, str):
            self.fail(path, "must be a string")
        elif not lo <= len(value) <= hi:
            self.fail(path, f"must be {lo}–{hi} characters long")
        elif "\x00" in value:
            self.fail(path, "must not contain NUL")
        elif pattern and not pattern.match(value):
            self.fail(path, f"must match {pattern.pattern}")

    def integer(self, value, path, lo: int, hi: int, nullable: bool = False) -> None:
        if value is None and nullable:
            return
        if isinstance(value, bool) or not isinstance(value, int):
            self.fail(path, "must be a whole number")
        elif not lo <= value <= hi:
            self.fail(path, f"must be between {lo:,} and {hi:,}")

    def boolean(self, value, path) -> None:
        if not isinstance(value, bool):
            self.fail(path, "must be true or false")

    def items(self, value, path, hi: int, lo: int = 0) -> list:
        if not isinstance(value, list):
            self.fail(path, "must be a list")
            return []
        if not lo <= len(value) <= hi:
            self.fail(path, f"must hold {lo}–{hi} items")
        return value

    # -- the file's parts

    def file(self, data) -> None:
        if not self.mapping(data, (), ("agencies",), ()):
            return
        data = {k: v for k, v in data.items() if not str(k).startswith("x-")}
        agencies = self.items(data.get("agencies") or [], ("agencies",), 1000)
        self.unique(agencies, "code", ("agencies",), "agency code")
        for i, agency in enumerate(agencies):
            self.agency(agency, ("agencies", i))

    def unique(self, items: list, field: str, path: tuple, what: str, key=None) -> None:
        seen: dict = {}
        for i, item in enumerate(items):
            if not isinstance(item, dict):
                continue
            ident = key(item) if key else item.get(field)
            if ident is None:
                continue
            if ident in seen:
                self.fail((*path, i), f"duplicate {what} {ident!r} (first at item {seen[ident]})")
            seen.setdefault(ident, i)

    def agency(self, agency, path) -> None:
        if not self.mapping(agency, path, ("code", "name"), ("services", "counters", "keys")):
            return
        self.text(agency.get("code"), (*path, "code"), 2, 16, AGENCY_CODE)
        self.text(agency.get("name"), (*path, "name"), 2, 120)
        services = self.items(agency.get("services") or [], (*path, "services"), 500)
        self.unique(services, "code", (*path, "services"), "service code")
        for i, service in enumerate(services):
            self.service(service, (*path, "services", i))
        codes = {s.get("code") for s in services if isinstance(s, dict)}
        counters = self.items(agency.get("counters") or [], (*path, "counters"), 500)
        self.unique(counters, "name", (*path, "counters"), "counter name")
        for i, counter in enumerate(counters):
            self.counter(counter, (*path, "counters", i), codes)
        keys = self.items(agency.get("keys") or [], (*path, "keys"), 500)
        self.unique(keys, "", (*path, "keys"), "key", key=key_identity)
        for i, key in enumerate(keys):
            self.key(key, (*path, "keys", i))

    def service(self, service, path) -> None:
        optional = ("requirements", "daily_quota", "opening_hours", "booking")
        required = ("code", "name", "fee_idr", "sla_minutes", "prefix")
        if not self.mapping(service, path, required, optional):
            return
        self.text(service.get("code"), (*path, "code"), 2, 24, SERVICE_CODE)
        self.text(service.get("name"), (*path, "name"), 2, 120)
        self.integer(service.get("fee_idr"), (*path, "fee_idr"), 0, 100_000_000)
        self.integer(service.get("sla_minutes"), (*path, "sla_minutes"), 1, 10_080)
        self.text(service.get("prefix"), (*path, "prefix"), 1, 3, PREFIX)
        if "requirements" in service:
            for i, item in enumerate(
                self.items(service["requirements"], (*path, "requirements"), 50)
            ):
                self.text(item, (*path, "requirements", i), 0, 200)
        if "daily_quota" in service:
            self.integer(service["daily_quota"], (*path, "daily_quota"), 1, 100_000, nullable=True)
        if service.get("opening_hours") is not None:
            periods = self.items(service["opening_hours"], (*path, "opening_hours"), 12)
            for i, period in enumerate(periods):
                where = (*path, "opening_hours", i)
                if self.mapping(period, where, ("opens", "closes"), ()):
                    self.text(period.get("opens"), (*where, "opens"), 5, 5, HHMM)
                    self.text(period.get("closes"), (*where, "closes"), 5, 5, HHMM)
        if service.get("booking") is not None:
            where = (*path, "booking")
            optional = ("daily_quota", "early_minutes", "late_minutes")
            booking = service["booking"]
            if self.mapping(booking, where, ("slot_minutes", "capacity"), optional):
                self.integer(booking.get("slot_minutes"), (*where, "slot_minutes"), 5, 480)
                self.integer(booking.get("capacity"), (*where, "capacity"), 1, 1000)
                if "daily_quota" in booking:
                    quota = booking["daily_quota"]
                    self.integer(quota, (*where, "daily_quota"), 1, 100_000, nullable=True)
                for name in ("early_minutes", "late_minutes"):
                    if name in booking:
                        self.integer(booking[name], (*where, name), 0, 240)

    def counter(self, counter, path, codes: set) -> None:
        if not self.mapping(counter, path, ("name", "services"), ("is_open",)):
            return
        self.text(counter.get("name"), (*path, "name"), 1, 40)
        services = self.items(counter.get("services") or [], (*path, "services"), 100, lo=1)
        for i, code in enumerate(services):
            if code not in codes:
                self.fail((*path, "services", i), f"no service {code!r} in this agency")
        if "is_open" in counter:
            self.boolean(counter["is_open"], (*path, "is_open"))

    def key(self, key, path) -> None:
        if not self.mapping(key, path, ("role", "label"), ("scope",)):
            return
        if key.get("role") not in KEY_ROLES:
            self.fail((*path, "role"), f"must be one of {', '.join(KEY_ROLES)}")
        self.text(key.get("label"), (*path, "label"), 1, 80)
        if key.get("scope") is not None and key.get("scope") not in SCOPES:
            self.fail((*path, "scope"), "must be agency or mall")
        if key.get("scope") == "mall" and key.get("role") != "display":
            self.fail((*path, "scope"), "only display keys take scope 'mall'")


def key_scope(key: dict) -> str:
    if key.get("role") == "kiosk":
        return "mall"
    return key.get("scope") or "agency"


def key_identity(key: dict) -> tuple:
    return (key.get("role"), key.get("label"), key_scope(key))


def load(text: str, source: str = "mall.yaml") -> dict:
    """Parse and validate the whole file; ``ManifestError`` lists every problem with its line."""
    try:
        node = yaml.compose(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark else 1
        problem = getattr(exc, "problem", None) or str(exc)
        raise ManifestError(source, [Problem(line, "(syntax)", problem)]) from None
    if node is None:
        raise ManifestError(source, [Problem(1, "(file)", "the file is empty")])
    located = Located()
    data = located.build(node)
    checker = _Checker(located)
    checker.file(data)
    if checker.problems:
        raise ManifestError(source, checker.problems)
    return data
