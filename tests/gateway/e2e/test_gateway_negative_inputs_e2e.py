"""Generated from the route table: every operation of ``mpp_gateway.http.ROUTES`` gets every class
of hostile input, against a real mall (gateway + queue, payment and rating processes) on SQLite
and on PostgreSQL. Not one answer may be a 5xx, and every 4xx must be the error envelope.

Classes (one request each, one value bad at a time, the rest of the request valid so the bad
value travels as far as the code lets it):

- path values: a NUL byte, ``:`` and spaces, 2,000 characters, non-ASCII, an unknown UUID;
- query values, per field of the route's query schema (``cursor``/``limit`` on lists): NUL,
  2,000 characters, overflowing and negative integers, edge and invalid dates, crafted cursors
  (base64 of ``[null,null]``, of an object, of the wrong length or types, not base64 at all);
- bodies: JSON nested 20,000 deep (arrays and objects) and 40 deep, non-object JSON, malformed
  JSON, invalid UTF-8, ``NaN``/``Infinity``; and per field of the route's body schema (nested ones
  too): a NUL, a lone surrogate (``"\\ud800"``), 50,000-character strings, integers beyond int4
  and int8, ``1e400``, wrong JSON types, edge dates, long lists.

Protected operations are called with the mall admin key and with the agency's own key of the
route's role (agency_admin, officer, display); public ones without a key. Rate limits are lifted
for the run. Bodies stay under the gateway's body cap (64 KB by default), so each reaches the
code under test; a 413 would still be accepted.

Besides "no 5xx, always the envelope", some classes have one right answer, also generated from
the table: a path value that is no id (NUL, ``:``/spaces, 2,000 characters, non-ASCII) is 404
(403 if the key's agency is not that value); deep JSON on a route with a body is 400 (or 413); a
NUL or lone surrogate in a body string is 422; ``limit`` 0 or 101 on every list is 422.
"""

from __future__ import annotations

import base64
import itertools
import json
import time
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

import pytest
import requests
from marshmallow import fields

import mpp_gateway.service  # noqa: F401  (registers every route)
from mpp_gateway.http import ROUTES
from mpp_gateway.openapi import HIDDEN
from tests.support.infra import wait_until
from tests.support.mall import MALL_ADMIN_KEY

pytestmark = pytest.mark.e2e

STREAM = ("GET", "/v1/display/stream")  # an endless answer: read the status line only
SURROGATE = "\ud800"  # a lone UTF-16 surrogate: JSON can carry it as "\ud800", UTF-8 cannot
HUGE = 50_000  # characters: under the gateway's body cap, so the string reaches the schemas
DEEP = 20_000  # levels: far beyond Python's recursion limit, still under the body cap
ENVELOPE_KEYS = {"code", "message", "details", "request_id"}
_serial = itertools.count(1)


def cursor_of(value) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


CURSORS = [
    cursor_of([None, None]),  # W251bGwsbnVsbF0 (issue 15)
    cursor_of({"a": 1}),
    cursor_of([1]),
    cursor_of([[], {}]),
    cursor_of([1, 2]),
    cursor_of(["0001-01-01T00:00:00", "x"]),
    cursor_of(["9999-12-31T23:59:59+14:00", "\x00"]),
    cursor_of(["x\x00", "y"]),
    cursor_of([2**64, "y"]),
    cursor_of("x"),
    cursor_of(None),
    "!!!not-base64!!!",
    "x" * 499,
]
DATES = ["0001-01-01", "9999-12-31", "1900-01-01", "2026-02-30", "26-1-1", "x", "a\x00b"]
DATETIMES = [
    "0001-01-01T00:00:00+00:00",
    "9999-12-31T23:59:59-12:00",
    "2026-01-01T08:00:00",
    "x",
    "2026-01-01T08:00:00+99:00",
]
INTS_Q = ["2147483648", "9223372036854775808", "-1", "0", "101", "1e400", "x", "a\x00b"]
STRINGS_Q = ["a\x00b", "x" * 2000, "a:b c", "é"]
INTS_BODY = [2**31, 2**63, -(2**63) - 1, 10**30, 1.5, "1", True, None]
RAW_INTS_BODY = ["1e400", "NaN", "Infinity", "-Infinity", "1" * 5000]


def bearer(key: str | None) -> dict:
    return {"Authorization": f"Bearer {key}"} if key else {}


class World:
    """Real resources of one agency, so the bad value is the only thing wrong with a request."""

    def __init__(self, url: str) -> None:
        self.url = url
        admin = bearer(MALL_ADMIN_KEY)
        post = self.post
        agency = post("/v1/agencies", admin, {"code": "NEG", "name": "Negative"})
        self.agency = agency["id"]
        self.keys = {"mall_admin": MALL_ADMIN_KEY, "agency_admin": agency["admin_api_key"]["key"]}
        own = bearer(self.keys["agency_admin"])
        for role in ("officer", "display", "kiosk"):
            self.keys[role] = post(f"/v1/agencies/{self.agency}/api-keys", own, {"role": role})[
                "key"
            ]
        spare = post(f"/v1/agencies/{self.agency}/api-keys", own, {"role": "display"})
        self.service = post(
            f"/v1/agencies/{self.agency}/services",
            own,
            {
                "code": "NEG",
                "name": "Layanan",
                "fee_idr": 10000,
                "sla_minutes": 30,
                "prefix": "N",
                "opening_hours": [{"opens": "00:00", "closes": "23:59"}],
                "booking": {"slot_minutes": 30, "capacity": 5},
            },
        )["id"]
        self.other_service = post(
            f"/v1/agencies/{self.agency}/services",
            own,
            {"code": "NEG2", "name": "Lain", "fee_idr": 0, "sla_minutes": 30, "prefix": "M"},
        )["id"]
        self.counter = post(
            f"/v1/agencies/{self.agency}/counters",
            own,
            {"name": "Loket 1", "service_ids": [self.service, self.other_service]},
        )["id"]
        officer = bearer(self.keys["officer"])
        done = post("/v1/tickets", {}, {"service_id": self.service})
        post(f"/v1/counters/{self.counter}/call-next", officer)
        for action in ("start", "complete"):
            post(f"/v1/tickets/{done['id']}/{action}", officer)
        self.payment = wait_until(
            lambda: (
                (
                    r := requests.get(
                        f"{url}/v1/tickets/{done['id']}/payment",
                        params={"code": done["access_code"]},
                    )
                ).ok
                and r.json()["id"]
            ),
            timeout=20,
            message="the invoice of the completed ticket",
        )
        self.ticket = post("/v1/tickets", {}, {"service_id": self.service})["id"]
        self.ids = {
            "agency": self.agency,
            "service": self.service,
            "counter": self.counter,
            "ticket": self.ticket,
            "booking": str(uuid.uuid4()),
            "payment": self.payment,
            "rating": str(uuid.uuid4()),
            "complaint": str(uuid.uuid4()),
            "key_id": spare["id"],
            "provider": "simulator",
            "action": "transfer",
            "asset": "init.js",
        }

    def post(self, path: str, headers: dict, body: dict | None = None) -> dict:
        def attempt():  # a fresh SQLite mall may answer 503 (busy) for its first moments
            answer = requests.post(f"{self.url}{path}", headers=headers, json=body, timeout=20)
            return None if answer.status_code == 503 else [answer]

        (answer,) = wait_until(attempt, timeout=20, message=f"POST {path} answers")
        assert answer.status_code in (200, 201), (path, answer.status_code, answer.text)
        return answer.json()

    def tomorrow_slot(self) -> str:
        day = datetime.now(UTC) + timedelta(days=1)
        return day.replace(hour=3, minute=0, second=0, microsecond=0).isoformat()


def valid_body(route, world: World) -> dict:
    """A body the route accepts (or refuses for a reason other than its shape)."""
    n = next(_serial)
    code = f"N{n}"
    bodies = {
        "/v1/agencies": {"code": code, "name": "Instansi"},
        "/v1/agencies/{agency}/services": {
            "code": code,
            "name": "Layanan",
            "fee_idr": 1000,
            "sla_minutes": 30,
            "prefix": "Q",
            "requirements": ["KTP"],
            "daily_quota": 100,
            "opening_hours": [{"opens": "08:00", "closes": "12:00"}],
            "booking": {"slot_minutes": 30, "capacity": 2, "daily_quota": 10},
        },
        "/v1/agencies/{agency}/services/{service}": {
            "name": "Layanan",
            "daily_quota": 100,
            "requirements": ["KTP"],
            "opening_hours": [{"opens": "00:00", "closes": "23:59"}],
            "booking": {"slot_minutes": 30, "capacity": 5, "daily_quota": 50},
        },
        "/v1/agencies/{agency}/counters": {
            "name": f"Loket {n}",
            "service_ids": [world.service],
            "is_open": True,
        },
        "/v1/agencies/{agency}/counters/{counter}": {
            "name": "Loket 1",
            "service_ids": [world.service, world.other_service],
            "is_open": True,
        },
        "/v1/agencies/{agency}/api-keys": {"role": "display", "label": "papan", "scope": "agency"},
        "/v1/tickets": {"service_id": world.service, "nik": None, "phone": "081234567890"},
        "/v1/tickets/{ticket}/{action}": {
            "to_service_id": world.other_service,
            "reason": "salah layanan",
            "counter_id": world.counter,
        },
        "/v1/bookings": {
            "service_id": world.service,
            "slot_start": world.tomorrow_slot(),
            "nik": "3201011501900003",
            "phone": "081234567890",
        },
        "/v1/ratings": {
            "token": "x" * 43,
            "stars": 4,
            "answers": {"U1": 3},
            "comment": "baik",
            "flag_complaint": False,
        },
        "/v1/complaints/{complaint}/responses": {"message": "Mohon maaf", "resolve": False},
        "/v1/payments/{payment}/refunds": {"amount_idr": 1, "reason": "batal"},
        "/v1/payments/{payment}/method": {"method": "qris"},
    }
    return bodies.get(route.path, {})


def field_values(field) -> list:
    """Bad JSON values for one body field, by its marshmallow type (raw JSON text as ``bytes``)."""
    if isinstance(field, fields.Boolean):
        return ["yes", 2, None, [], "a\x00b"]
    if isinstance(field, fields.Integer):
        return [*INTS_BODY, *(raw.encode() for raw in RAW_INTS_BODY)]
    if isinstance(field, fields.DateTime):
        return [*DATETIMES, 1, None]
    if isinstance(field, fields.Date):
        return [*DATES, 1]
    if isinstance(field, fields.String):
        return ["a\x00b", SURROGATE, "x" * HUGE, 123, [], {}, True]
    if isinstance(field, fields.List):
        return ["x", [None], ["a\x00b"], [SURROGATE], ["x"] * 10_000, [[]], {}]
    if isinstance(field, fields.Dict):
        return [[], {"U1": 2**63}, {SURROGATE: 1}, {"U1": "a\x00b"}, {"x" * HUGE: 1}]
    if isinstance(field, fields.Nested):
        return ["x", 1, [], {"zzz": 1}, None]
    return [None, "a\x00b"]


def nested_schema(field):
    inner = field.inner if isinstance(field, fields.List) else field
    return inner.schema if isinstance(inner, fields.Nested) else None


def body_cases(route, world: World):
    """(label, raw bytes) pairs: whole-body classes, then one bad field at a time."""
    yield "deep array", b"[" * DEEP + b"]" * DEEP
    yield "deep object", b'{"a":' * DEEP + b"1" + b"}" * DEEP
    yield "40 deep", b'{"a":' * 40 + b"1" + b"}" * 40
    for raw in (b"[]", b'"x"', b"1", b"null", b"true", b"{", b"\xff\xfe", b"NaN"):
        yield f"body {raw[:8]!r}", raw
    yield "surrogate key", b'{"\\ud800": 1}'
    if route.body is None:
        return
    schema = route.body()
    for name, field in schema.fields.items():
        key = field.data_key or name
        for value in field_values(field):
            body = valid_body(route, world)
            body[key] = value
            yield f"{key}={short(value)}", encode(body)
        inner = nested_schema(field)
        base = valid_body(route, world).get(key)
        if inner is None or base is None:
            continue
        for sub_name, sub_field in inner.fields.items():
            sub_key = sub_field.data_key or sub_name
            for value in field_values(sub_field):
                body = valid_body(route, world)
                item = dict(body[key][0] if isinstance(body[key], list) else body[key])
                item[sub_key] = value
                body[key] = [item] if isinstance(body[key], list) else item
                yield f"{key}.{sub_key}={short(value)}", encode(body)


def encode(body: dict) -> bytes:
    """JSON text of ``body``; ``bytes`` values are spliced in as raw JSON (``1e400``, ``NaN``);
    lone surrogates travel as the ``\\ud800`` escape (what an attacker sends)."""
    raws = {}

    def mark(value):
        if isinstance(value, bytes):
            token = f"@@raw{len(raws)}@@"
            raws[token] = value.decode()
            return token
        if isinstance(value, dict):
            return {mark(k): mark(v) for k, v in value.items()}
        if isinstance(value, list):
            return [mark(v) for v in value]
        return value

    text = json.dumps(mark(body))  # ensure_ascii: "\ud800" stays an escape
    for token, raw in raws.items():
        text = text.replace(f'"{token}"', raw)
    return text.encode()


def short(value) -> str:
    text = repr(value)
    return text if len(text) <= 24 else f"{text[:12]}…({len(text)})"


def query_fields(route) -> dict:
    from mpp_contracts.pagination import PageQuerySchema

    schema = route.query or (PageQuerySchema if route.many else None)
    if schema is None:
        return {}
    return {field.data_key or name: field for name, field in schema().fields.items()}


def query_cases(route):
    for key, field in query_fields(route).items():
        if key == "cursor":
            values = CURSORS
        elif isinstance(field, fields.Integer):
            values = INTS_Q
        elif isinstance(field, fields.Date):
            values = DATES
        else:
            values = [*STRINGS_Q, "0000-01", "9999-12", "-1"]
        for value in values:
            yield f"?{key}={short(value)}", {key: value}
    yield "?unknown", {"zzz": "1"}


NOT_IDS = ("a\x00b", "a:b c", "x" * 2000, "é", " ")  # no resource has such an id: 404


def path_cases(route, world: World):
    names = [part[1:-1] for part in route.path.split("/") if part.startswith("{")]
    for name in names:
        for value in (*NOT_IDS, str(uuid.uuid4()), ".."):
            values = {**world.ids, name: value}
            yield f"{{{name}}}={short(value)}", values, {403, 404} if value in NOT_IDS else None


def fill(path: str, values: dict) -> str:
    for name, value in values.items():
        path = path.replace("{" + name + "}", quote(value, safe=""))
    return path


KEY_FOR_ROLES = {
    ("agency_admin",): "agency_admin",
    ("officer",): "officer",
    ("display",): "display",
}


def callers(route, world: World) -> list[dict]:
    if route.roles is None:
        return [{}]
    own = KEY_FOR_ROLES.get(route.roles)
    keys = [MALL_ADMIN_KEY] + ([world.keys[own]] if own else [])
    return [bearer(k) for k in keys]


WEBHOOK = "/v1/webhooks/payments/{provider}"


def body_expectation(route, label: str, raw: bytes) -> set[int] | None:
    """The one right answer of a body class on a route that reads its body."""
    if route.body is None and route.path != WEBHOOK:
        return None  # the route reads no body: any answer but a 5xx will do
    if label.startswith("deep"):
        return {400, 413}
    if route.body is not None and (b"\\u0000" in raw or b"\\ud800" in raw):
        return {422}
    return None


def requests_for(route, world: World):
    """Every (label, path, params, body, expected statuses or None) the route gets."""
    plain = fill(route.path, world.ids)
    for label, values, expect in path_cases(route, world):
        body = encode(valid_body(route, world)) if route.body is not None else None
        yield label, fill(route.path, values), {}, body, expect
    for label, params in query_cases(route):
        expect = {422} if params.get("limit") in ("0", "101") else None
        yield label, plain, params, None, expect
    if route.method in ("POST", "PATCH") or route.body is not None:
        for label, raw in body_cases(route, world):
            yield label, plain, {}, raw, body_expectation(route, label, raw)


def envelope_problem(answer: requests.Response) -> str | None:
    try:
        error = answer.json()["error"]
    except (ValueError, KeyError, TypeError):
        return "not the error envelope"
    if not isinstance(error, dict) or set(error) != ENVELOPE_KEYS:
        return f"envelope keys {sorted(error) if isinstance(error, dict) else error!r}"
    if not isinstance(error["details"], dict) or not isinstance(error["code"], str):
        return "envelope field types"
    return None


def hammer(url: str, world: World) -> tuple[Counter, list[str], int]:
    session = requests.Session()
    statuses: Counter = Counter()
    problems: list[str] = []
    sent = 0
    for route in ROUTES:
        if route.path in HIDDEN and route.path != "/docs/{asset}":
            continue
        stream = (route.method, route.path) == STREAM
        for headers in callers(route, world):
            for label, path, params, body, expect in requests_for(route, world):
                sent += 1
                sent_headers = dict(headers)
                if body is not None:
                    sent_headers["Content-Type"] = "application/json"
                try:
                    answer = session.request(
                        route.method,
                        url + path,
                        params=params,
                        data=body,
                        headers=sent_headers,
                        timeout=30,
                        stream=stream,
                    )
                except requests.RequestException as exc:
                    problems.append(f"{route.method} {route.path} [{label}]: {exc!r}")
                    continue
                status = answer.status_code
                statuses[status] += 1
                where = f"{route.method} {route.path} [{label}] {status}"
                if stream:
                    answer.close()
                    if status >= 500:
                        problems.append(where)
                    continue
                if status >= 500:
                    problems.append(f"{where}: {answer.text[:200]}")
                    continue
                if expect is not None and status not in expect:
                    problems.append(f"{where}: expected {sorted(expect)}: {answer.text[:120]}")
                if status >= 400:
                    problem = envelope_problem(answer)
                    if problem:
                        problems.append(f"{where}: {problem}: {answer.text[:200]}")
    return statuses, problems, sent


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_no_input_from_the_route_table_gets_a_5xx_or_leaves_the_envelope(mall_factory, backend):
    env = {"RATE_LIMIT_PER_MINUTE": "1000000", "RATE_LIMIT_PUBLIC_PER_MINUTE": "1000000"}
    mall = mall_factory(backend, env)
    world = World(mall.url)
    started = time.monotonic()
    statuses, problems, sent = hammer(mall.url, world)
    seconds = time.monotonic() - started
    print(f"{backend}: {sent} requests in {seconds:.0f} s:", dict(sorted(statuses.items())))
    operations = {(r.method, r.path) for r in ROUTES}
    assert len(operations) >= 45
    server_errors = sum(n for status, n in statuses.items() if status >= 500)
    assert not problems, (
        f"{len(problems)} problems ({server_errors} answers >= 500) in {sent} requests:\n"
        + "\n".join(problems[:80])
    )
