"""The gateway's HTTP edge: one error envelope, one table of statuses, a route table.

Every route is declared with :func:`route`, which records who may call it (``ROUTES``); the
route-table auth test is generated from that table, so a new route cannot be forgotten.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps

from marshmallow import ValidationError
from nameko.exceptions import UnknownService
from nameko.web.server import WsgiApp
from werkzeug.exceptions import HTTPException, MethodNotAllowed
from werkzeug.exceptions import NotFound as WerkzeugNotFound
from werkzeug.wrappers import Request, Response

from mpp_chassis.web import CorrelatedWebServer, HttpEntrypoint, request_id_from
from mpp_contracts import errors
from mpp_gateway import metrics

_log = logging.getLogger(__name__)
_access = logging.getLogger("mpp.access")

PUBLIC: tuple[str, ...] = ()

STATUS_BY_ERROR: dict[type[Exception], int] = {
    errors.BadRequest: 400,
    errors.Unauthorized: 401,
    errors.Forbidden: 403,
    errors.NotFound: 404,
    errors.Conflict: 409,
    errors.ValidationFailed: 422,
    errors.ServiceUnavailable: 503,
}


class RateLimited(errors.MppError):
    default_code = "RATE_LIMITED"


STATUS_BY_ERROR[RateLimited] = 429


@dataclass(frozen=True)
class Route:
    """One row of the route table: who may call it and what it takes and answers (for OpenAPI)."""

    method: str
    path: str
    roles: tuple[str, ...] | None  # None: public
    name: str
    agency_param: str | None = None
    body: type | None = None  # marshmallow schema of the JSON body
    query: type | None = None  # marshmallow schema of the query string
    response: type | None = None  # marshmallow schema of the success body
    status: int = 200  # success status
    summary: str = ""
    idempotent: bool = False  # creating POST: honours Idempotency-Key
    many: bool = False  # response is a paginated list of ``response`` items
    media_type: str = "application/json"  # of the success body
    requires: tuple[str, str] | None = None  # (setting, value): the route exists only then


ROUTES: list[Route] = []


def route_exists(spec: Route, config) -> bool:
    """A route with ``requires`` exists only when the gateway's config has that value (the
    payment simulator's routes: only where ``PAYMENT_PROVIDER`` is ``simulator``)."""
    if spec.requires is None:
        return True
    name, value = spec.requires
    return str(config.get(name, "")) == value


def error_body(code: str, message: str, details: dict | None, request_id: str | None) -> dict:
    return {
        "error": {
            "code": code,
            "message": message,
            "details": details or {},
            "request_id": request_id,
        }
    }


def error_response(exc: Exception, request_id: str | None) -> Response:
    """Map any exception to the envelope; unknown ones become a bare 500 with no trace."""
    headers = {"X-Request-ID": request_id or ""}
    if isinstance(exc, ValidationError):
        exc = errors.ValidationFailed(
            "VALIDATION_FAILED", "invalid fields", exc.normalized_messages()
        )
    elif isinstance(exc, UnknownService):
        exc = errors.ServiceUnavailable("SERVICE_UNAVAILABLE", "a service is not running")
    if isinstance(exc, errors.MppError):
        status = next((code for cls, code in STATUS_BY_ERROR.items() if isinstance(exc, cls)), 500)
        if status in (429, 503):
            headers["Retry-After"] = str(exc.details.get("retry_after", 5))
        body = error_body(exc.code, exc.message, exc.details, request_id)
    else:
        _log.exception("unhandled error")
        status = 500
        body = error_body("INTERNAL", "internal error", None, request_id)
    return Response(json.dumps(body), status=status, headers=headers, mimetype="application/json")


class GatewayEntrypoint(HttpEntrypoint):
    server = None  # replaced below, after the server class exists

    def response_from_exception(self, exc):
        return error_response(exc, None)


class GatewayWsgiApp(WsgiApp):
    """Adds the request id, CORS, route metrics and JSON 404/405s around nameko's dispatch."""

    def __call__(self, environ, start_response):
        started = time.perf_counter()
        request = Request(environ, shallow=True)
        request_id = request_id_from(request.headers)
        environ["mpp.request_id"] = request_id
        adapter = self.url_map.bind_to_environ(environ)
        route = "unmatched"
        cors = self.server.cors_headers(request)
        if request.method == "OPTIONS" and cors:
            response = Response(status=204, headers=cors)
        else:
            try:
                provider, values = adapter.match()
                route = provider.url
                request.path_values = values
                response = provider.handle_request(request)
            except MethodNotAllowed:
                response = error_response(
                    errors.MppError("METHOD_NOT_ALLOWED", "method not allowed"), request_id
                )
                response.status_code = 405
            except WerkzeugNotFound:
                response = error_response(
                    errors.NotFound("ROUTE_NOT_FOUND", "no such path"), request_id
                )
            except HTTPException as exc:
                response = error_response(errors.BadRequest("BAD_REQUEST", exc.name), request_id)
        if isinstance(response, Response):
            response.headers["X-Request-ID"] = request_id
            for name, value in cors.items():
                response.headers.setdefault(name, value)
            status = response.status_code
        else:
            status = 200
        seconds = time.perf_counter() - started
        metrics.observe_request(request.method, route, status, seconds)
        _access.info(
            "%s %s %s",
            request.method,
            route,
            status,
            extra={
                "correlation_id": request_id,
                "method": request.method,
                "route": route,
                "status": status,
                "ms": round(seconds * 1000, 1),
            },
        )
        return response(environ, start_response)


class GatewayWebServer(CorrelatedWebServer):
    def get_wsgi_app(self):
        return GatewayWsgiApp(self)

    def cors_headers(self, request) -> dict[str, str]:
        origin = request.headers.get("Origin")
        allowed = [
            o.strip()
            for o in str(self.container.config.get("CORS_ORIGINS", "")).split(",")
            if o.strip()
        ]
        if not origin or not ("*" in allowed or origin in allowed):
            return {}
        return {
            "Access-Control-Allow-Origin": origin if "*" not in allowed else "*",
            "Access-Control-Allow-Methods": "GET, POST, PATCH, DELETE, OPTIONS",
            "Access-Control-Allow-Headers": (
                "Authorization, Content-Type, Idempotency-Key, X-Request-ID, Last-Event-ID"
            ),
            "Access-Control-Expose-Headers": "X-Request-ID, Retry-After",
            "Access-Control-Max-Age": "600",
        }


GatewayEntrypoint.server = GatewayWebServer()


def route(
    method: str,
    path: str,
    *,
    roles: tuple[str, ...] | None = None,
    agency_param: str | None = None,
    **documentation,
) -> Callable:
    """Declare a route: ``roles=None`` is public; otherwise a key with one of ``roles`` is needed
    (mall_admin always passes) and, with ``agency_param``, the key's agency must match it.
    ``documentation`` fills the other :class:`Route` fields (body, query, response, status, …)."""

    def decorate(fn):
        werkzeug_path = path.replace("{", "<").replace("}", ">")
        spec = Route(method, path, roles, fn.__name__, agency_param, **documentation)
        ROUTES.append(spec)

        @wraps(fn)
        def handler(self, request, **values):
            request_id = request.environ.get("mpp.request_id")

            def invoke(principal):
                try:
                    return fn(self, request, principal, **values)
                except Exception as exc:
                    return error_response(exc, request_id)

            if not route_exists(spec, self.config):  # as if it were not in the table at all
                missing = errors.NotFound("ROUTE_NOT_FOUND", "no such path")
                return error_response(missing, request_id)
            try:
                principal = None
                if roles is not None:
                    principal = self.authenticate(request)
                    self.authorize(
                        principal, roles, values.get(agency_param) if agency_param else None
                    )
                if spec.path.startswith("/v1/"):
                    self.limit_rate(request, principal)
                if spec.idempotent and request.headers.get("Idempotency-Key") is not None:
                    return self.run_idempotent(request, principal, spec, invoke)
                result = fn(self, request, principal, **values)
            except Exception as exc:  # every error leaves as the envelope
                return error_response(exc, request_id)
            return result

        del handler.__wrapped__  # nameko checks the wrapper's own signature
        return GatewayEntrypoint.decorator(method, werkzeug_path)(handler)

    return decorate


def read_json(request) -> dict:
    raw = request.get_data(cache=True)
    if not raw:
        return {}
    try:
        body = json.loads(raw)
    except ValueError as exc:
        raise errors.BadRequest("MALFORMED_JSON", "request body is not valid JSON") from exc
    if not isinstance(body, dict):
        raise errors.BadRequest("MALFORMED_JSON", "request body must be a JSON object")
    return body
