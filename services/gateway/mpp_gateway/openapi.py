"""The OpenAPI 3 document, generated from the route table and the same marshmallow schemas
that validate requests (apispec + MarshmallowPlugin), and the locally served ``/docs`` page.

Every operation documents the error envelope for each status it can answer, its security
(bearer API key, or none for public routes), ``Idempotency-Key`` on creating POSTs and
``cursor``/``limit`` on paginated lists.
"""

from __future__ import annotations

import re
from functools import cache

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin

from mpp_gateway.http import ROUTES, Route, route_exists
from mpp_gateway.inputs import path_schema
from mpp_gateway.schemas.common import ErrorEnvelopeSchema, PageQuerySchema, page_schema

TITLE = "Mal Pelayanan Publik API"
VERSION = "1.0.0"
DESCRIPTION = (
    "The mall's one HTTP surface: agencies plug in services and counters, kiosks and citizens "
    "take tickets and bookings, officers call them, payments and ratings follow. Send API keys "
    "as `Authorization: Bearer <key>`. Every error is one envelope; see docs/api-guide.md."
)
ERROR_TEXT = {
    400: "Malformed request (e.g. body is not JSON)",
    401: "Missing, unknown or revoked API key",
    403: "The key's role or agency may not do this",
    404: "No such resource or path",
    409: "Conflict: wrong state, or Idempotency-Key reused with another body",
    413: "Request body larger than MAX_BODY_BYTES",
    414: "Request line longer than 8 KB",
    422: "Invalid fields: details lists each field's messages",
    429: "Rate limited: retry after Retry-After seconds",
    431: "A request header line over 8 KB, headers over 64 KB or more than 100 headers",
    503: "A service or its database is unavailable: retry after Retry-After seconds",
}
# pages, not API: the documentation and the screens
HIDDEN = {
    "/docs",
    "/docs/{asset}",
    "/kiosk",
    "/board",
    "/counter",
    "/book",
    "/agency",
    "/t/{ticket}",
    "/web/{asset}",
    "/web/vendor/{asset}",
}
# errors beyond the route's defaults: a read refused by the resource's state (a service without
# bookings), a public webhook authenticated by the provider's signature
EXTRA_ERRORS = {
    "/v1/services/{service}/slots": (409,),
    "/v1/webhooks/payments/{provider}": (401,),
}
READINESS = {
    "type": "object",
    "properties": {"status": {"type": "string"}, "checks": {"type": "object"}},
}
OPS_RESPONSES = {  # probes answer plain bodies, not the error envelope
    "/healthz": {"200": {"description": "Alive", "content": {"application/json": {}}}},
    "/readyz": {
        "200": {"description": "Ready", "content": {"application/json": {"schema": READINESS}}},
        "503": {
            "description": "Broker or a service does not answer",
            "content": {"application/json": {"schema": READINESS}},
        },
    },
    "/metrics": {"200": {"description": "Prometheus metrics", "content": {"text/plain": {}}}},
    "/openapi.json": {"200": {"description": "This document", "content": {"application/json": {}}}},
}
_PARAM = re.compile(r"{(\w+)}")


def _resolver(schema) -> str:
    cls = schema if isinstance(schema, type) else type(schema)
    name = cls.__name__.removesuffix("Schema") or cls.__name__
    return name


def _error_responses(route: Route) -> dict:
    statuses = [400, 404, 414, 422, 429, 431, 503]
    if route.roles is not None:
        statuses += [401, 403]
    if route.method in ("POST", "PATCH", "DELETE"):
        statuses += [409, 413]
    statuses += [s for s in EXTRA_ERRORS.get(route.path, ()) if s not in statuses]
    responses = {}
    for status in sorted(statuses):
        responses[str(status)] = f"Error{status}"
    return responses


def _success(route: Route) -> dict:
    if route.status == 204:
        return {"description": "Done (no body)"}
    media = route.media_type
    if route.response is not None:
        schema = page_schema(route.response) if route.many else route.response
        content = {"schema": schema}
    else:
        content = {"schema": {"type": "object"}} if media == "application/json" else {}
    return {
        "description": route.summary or "OK",
        "headers": {"X-Request-ID": "X-Request-ID"},
        "content": {media: content},
    }


#: what a generated client shows for a path parameter with a closed list of values
PATH_DESCRIPTIONS = {
    "action": "What the officer does to the ticket, and the body each action reads (fields not "
    "listed are ignored): `call` calls this ticket out of order (`counter_id`, required: the "
    "calling counter); `recall` announces a called ticket again; `start` begins serving it; "
    "`complete` ends the visit (a service with a fee then gets its invoice); `no-show` ends a "
    "called ticket whose citizen did not come (`reason`, optional); `transfer` moves it to "
    "another service's line (`to_service_id`, required); `cancel` ends it unserved (`reason`, "
    "optional). A transition the ticket's state does not allow answers 409.",
}


def _path_parameter(name: str) -> dict:
    parameter = {"in": "path", "name": name, "required": True, "schema": path_schema(name)}
    if name in PATH_DESCRIPTIONS:
        parameter["description"] = PATH_DESCRIPTIONS[name]
    return parameter


def _operation(route: Route) -> dict:
    params: list = [_path_parameter(name) for name in _PARAM.findall(route.path)]
    params.append("X-Request-ID")
    if route.query is not None:
        params.append({"in": "query", "schema": route.query})
    elif route.many:
        params.append({"in": "query", "schema": PageQuerySchema})
    if route.idempotent:
        params.append("Idempotency-Key")
    operation = {
        "operationId": route.name,
        "summary": route.summary or route.name.replace("_", " "),
        "tags": [route.path.split("/")[2] if route.path.startswith("/v1/") else "ops"],
        "parameters": params if route.path not in OPS_RESPONSES else [],
        "responses": OPS_RESPONSES.get(route.path)
        or {str(route.status): _success(route), **_error_responses(route)},
        "security": [{"apiKey": []}] if route.roles is not None else [],
    }
    if route.roles:
        operation["description"] = "Roles: " + ", ".join(("mall_admin", *route.roles)) + "."
    elif route.roles == ():
        operation["description"] = "Roles: mall_admin."
    if route.body is not None:
        # read_json takes an empty body as {}: one is required only if the schema needs a field
        operation["requestBody"] = {
            "required": any(field.required for field in route.body().fields.values()),
            "content": {"application/json": {"schema": route.body}},
        }
    return operation


@cache
def build_spec(settings: tuple[tuple[str, str], ...] | None = None) -> dict:
    """The document for every route in ``ROUTES`` (built once per process and ``settings``);
    with ``settings`` (the config values routes require), routes absent there are left out."""
    spec = APISpec(
        title=TITLE,
        version=VERSION,
        openapi_version="3.0.3",
        plugins=[MarshmallowPlugin(schema_name_resolver=_resolver)],
        info={"description": DESCRIPTION},
    )
    spec.components.security_scheme(
        "apiKey", {"type": "http", "scheme": "bearer", "description": "An API key"}
    )
    spec.components.schema("ErrorEnvelope", schema=ErrorEnvelopeSchema)
    spec.components.header(
        "X-Request-ID",
        {"description": "The request's correlation id", "schema": {"type": "string"}},
    )
    spec.components.header(
        "Retry-After", {"description": "Seconds to wait", "schema": {"type": "integer"}}
    )
    spec.components.parameter(
        "X-Request-ID",
        "header",
        {
            "required": False,
            "description": "Correlation id to follow this request across services: "
            "`[A-Za-z0-9._:-]{1,64}` is kept; any other value (or none) is replaced by a "
            "generated one, never refused",
            "schema": {"type": "string"},
        },
    )
    spec.components.parameter(
        "Idempotency-Key",
        "header",
        {
            "required": False,
            "description": "Retry safely: the same key and body replay the first answer for "
            "24 h; another body with the same key answers 409",
            "schema": {"type": "string", "minLength": 1, "maxLength": 200},
        },
    )
    for status, text in ERROR_TEXT.items():
        response = {
            "description": text,
            "headers": {"X-Request-ID": "X-Request-ID"},
            "content": {"application/json": {"schema": "ErrorEnvelope"}},
        }
        if status in (429, 503):
            response["headers"]["Retry-After"] = "Retry-After"
        spec.components.response(f"Error{status}", response)
    paths: dict[str, dict] = {}
    config = dict(settings) if settings is not None else None
    for route in ROUTES:
        if route.path in HIDDEN or (config is not None and not route_exists(route, config)):
            continue
        paths.setdefault(route.path, {})[route.method.lower()] = _operation(route)
    for path, operations in paths.items():
        spec.path(path=path, operations=operations)
    document = spec.to_dict()
    for operations in document["paths"].values():
        for operation in operations.values():
            for parameter in operation.get("parameters", []):
                if parameter.get("in") == "query":  # "?x=" means no x (mpp_gateway.inputs)
                    parameter["allowEmptyValue"] = True
    return document
