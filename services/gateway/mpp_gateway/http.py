"""The gateway's HTTP edge: one error envelope, one table of statuses, a route table.

Every route is declared with :func:`route`, which records who may call it (``ROUTES``); the
route-table auth test is generated from that table, so a new route cannot be forgotten.
"""

from __future__ import annotations

import inspect
import json
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps

from eventlet.wsgi import HeaderLineTooLong, HeadersTooLarge, Server
from marshmallow import Schema, ValidationError
from nameko.exceptions import UnknownService
from nameko.web.server import HttpOnlyProtocol, WsgiApp
from werkzeug.exceptions import HTTPException, MethodNotAllowed, RequestEntityTooLarge
from werkzeug.exceptions import NotFound as WerkzeugNotFound
from werkzeug.wrappers import Request, Response

from mpp_chassis.messaging import DATABASE_RETRY_AFTER_SECONDS, DATABASE_UNAVAILABLE
from mpp_chassis.signatures import SignatureBuiltOnce
from mpp_chassis.web import CorrelatedWebServer, HttpEntrypoint, request_id_from
from mpp_contracts import errors
from mpp_contracts.rpc import shared
from mpp_gateway import inputs, metrics

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


class PayloadTooLarge(errors.MppError):
    default_code = "PAYLOAD_TOO_LARGE"


STATUS_BY_ERROR[RateLimited] = 429
STATUS_BY_ERROR[PayloadTooLarge] = 413

DEFAULT_MAX_BODY_BYTES = 64 * 1024  # MAX_BODY_BYTES: every route's body, the webhooks' too


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
    elif isinstance(exc, RequestEntityTooLarge):  # a chunked body read past MAX_BODY_BYTES
        exc = PayloadTooLarge("PAYLOAD_TOO_LARGE", "request body too large")
    elif isinstance(exc, HTTPException):
        exc = errors.BadRequest("BAD_REQUEST", exc.name)
    elif isinstance(exc, DATABASE_UNAVAILABLE):
        # the gateway's own database (keys, idempotency): down, restarting or out of
        # connections; a retry may succeed. The traceback is logged, the client gets 503.
        _log.warning("gateway database unavailable", exc_info=exc)
        exc = errors.ServiceUnavailable(
            "DATABASE_UNAVAILABLE",
            "the gateway's database is unavailable or busy; retry",
            {"retry_after": DATABASE_RETRY_AFTER_SECONDS},
        )
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


class GatewayEntrypoint(SignatureBuiltOnce, HttpEntrypoint):
    server = None  # replaced below, after the server class exists

    def response_from_exception(self, exc):
        return error_response(exc, None)


class CappedInput:
    """A request body stream that raises ``RequestEntityTooLarge`` once more than ``cap`` bytes
    were read from it (so at most ``cap + 1`` bytes are ever held)."""

    def __init__(self, stream, cap: int) -> None:
        self._stream = stream
        self._cap = cap
        self._read = 0

    def _count(self, data: bytes) -> bytes:
        self._read += len(data)
        if self._read > self._cap:
            raise RequestEntityTooLarge()
        return data

    def _room(self, size) -> int:
        room = self._cap + 1 - self._read
        return room if size is None or size < 0 else min(size, room)

    def read(self, size=-1) -> bytes:
        return self._count(self._stream.read(self._room(size)))

    def readline(self, size=-1) -> bytes:
        return self._count(self._stream.readline(self._room(size)))


class GatewayWsgiApp(WsgiApp):
    """Adds the request id, CORS, route metrics, the body cap and JSON 404/405s around nameko's
    dispatch."""

    def __call__(self, environ, start_response):
        started = time.perf_counter()
        request = Request(environ, shallow=True)
        request_id = request_id_from(request.headers)
        environ["mpp.request_id"] = request_id
        adapter = self.url_map.bind_to_environ(environ)
        route = "unmatched"
        cors = self.server.cors_headers(request)
        max_body = self.server.max_body_bytes()
        chunked = environ.get("HTTP_TRANSFER_ENCODING", "").lower() == "chunked"
        if chunked:
            # werkzeug reads a body without Content-Length only from a server that ends the
            # stream itself (eventlet's Input does: it decodes the chunks); it is read up to
            # the cap, and one byte more is a 413
            environ["wsgi.input"] = CappedInput(environ["wsgi.input"], max_body)
            environ["wsgi.input_terminated"] = True
        if (request.content_length or 0) > max_body:  # refused before a byte of it is read
            response = error_response(
                PayloadTooLarge(
                    "PAYLOAD_TOO_LARGE",
                    f"request body larger than {max_body} bytes",
                    {"max_bytes": max_body},
                ),
                request_id,
            )
        elif request.method == "OPTIONS" and cors:
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
                response = error_response(exc, request_id)
        if isinstance(response, Response):
            if response.status_code == 413 or chunked:
                # the unread rest of the body (maybe gigabytes, or chunks without end) is not
                # drained by eventlet to keep the connection: it is closed instead
                environ.get("mpp.close_connection", lambda: None)()
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


class EnvelopeProtocol(HttpOnlyProtocol):
    """eventlet's HTTP protocol, answering what it refuses before the app in the envelope too: a
    request line over eventlet's 8 KB (414), a header line over 8 KB or headers over 64 KB in all
    (431; eventlet answers an empty 400), malformed request lines (400) and more than 100
    headers (431, the standard library's HTML page). The connection is closed after each."""

    def _read_request_line(self):
        line = super()._read_request_line()
        if len(line) >= self.server.url_length_limit:
            self.send_error(414)
            return b""  # eventlet then closes the connection without its own empty 414
        return line

    def parse_request(self):
        try:
            return super().parse_request()
        except (HeaderLineTooLong, HeadersTooLarge):
            self.send_error(431)
            return False

    def send_error(self, code, message=None, explain=None):
        code = int(code)
        reason, text = {
            414: ("URI_TOO_LONG", f"request line longer than {self.server.url_length_limit} bytes"),
            431: ("HEADERS_TOO_LARGE", "a request header line or the headers are too large"),
            505: ("HTTP_VERSION_NOT_SUPPORTED", "HTTP version not supported"),
        }.get(code, ("BAD_REQUEST", "malformed HTTP request"))
        if getattr(self, "request_version", "HTTP/0.9") == "HTTP/0.9":
            self.request_version = "HTTP/1.0"  # else the standard library writes no headers
        request_id = str(uuid.uuid4())
        body = json.dumps(error_body(reason, text, None, request_id)).encode()
        self.log_error("code %d, %s", code, reason)
        self.send_response_only(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Request-ID", request_id)
        self.send_header("Connection", "close")  # also sets close_connection
        self.end_headers()
        if getattr(self, "command", None) != "HEAD":
            self.wfile.write(body)

    def log_message(self, format, *args):  # noqa: A002 - the standard library's signature
        _access.info(format, *args)

    def get_environ(self):
        environ = super().get_environ()
        environ["mpp.close_connection"] = self._close_after_response
        return environ

    def _close_after_response(self) -> None:
        self.close_connection = 1


class QuietWsgiServer(Server):
    """eventlet's server, formatting its own access line only when its logger writes INFO.

    eventlet formats that line (with a timestamp of its own) for every request before handing
    it to the logger, and the mall's logging configuration drops it (``nameko`` at WARNING;
    the gateway's ``mpp.access`` line says more). Its errors are logged as before."""

    @property
    def log_output(self) -> bool:
        return self._log_output and self.log.isEnabledFor(logging.INFO)

    @log_output.setter
    def log_output(self, value: bool) -> None:
        self._log_output = value


class GatewayWebServer(CorrelatedWebServer):
    def get_wsgi_app(self):
        return GatewayWsgiApp(self)

    def get_wsgi_server(self, sock, wsgi_app, protocol=EnvelopeProtocol, debug=False):
        # nameko's own server, of the class above
        return QuietWsgiServer(
            sock,
            sock.getsockname(),
            wsgi_app,
            protocol=protocol,
            debug=debug,
            log=logging.getLogger("nameko.web.server"),
        )

    def max_body_bytes(self) -> int:
        return int(self.container.config.get("MAX_BODY_BYTES", DEFAULT_MAX_BODY_BYTES))

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
    ``documentation`` fills the other :class:`Route` fields (body, query, response, status, …).

    A route with a ``body`` schema has the body loaded by it here, and gets the loaded data as
    its ``body`` argument if it takes one (a route that passes the body on as sent, to a service
    that loads it with the same schema, reads it with :func:`read_json`): the schema the OpenAPI
    document shows is the one that validates, once, in one place. The body is loaded where the
    route's own work starts (after auth, rate limit and path checks, inside an idempotent
    claim), so its 400 or 422 is answered, and stored for an ``Idempotency-Key``, as before."""

    def decorate(fn):
        werkzeug_path = path.replace("{", "<").replace("}", ">")
        spec = Route(method, path, roles, fn.__name__, agency_param, **documentation)
        ROUTES.append(spec)
        takes_body = "body" in inspect.signature(fn).parameters

        @wraps(fn)
        def handler(self, request, **values):
            request_id = request.environ.get("mpp.request_id")

            def call(principal):
                if spec.body is not None:
                    body = load_body(request, spec.body)
                    if takes_body:
                        return fn(self, request, principal, body=body, **values)
                return fn(self, request, principal, **values)

            def invoke(principal):
                try:
                    return call(principal)
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
                inputs.check_path_values(values)  # 404 before any service sees a bad id
                inputs.check_query(request.args)
                request.args = inputs.without_empty(request.args)
                if spec.idempotent and request.headers.get("Idempotency-Key") is not None:
                    return self.run_idempotent(request, principal, spec, invoke)
                result = call(principal)
            except Exception as exc:  # every error leaves as the envelope
                return error_response(exc, request_id)
            return result

        del handler.__wrapped__  # nameko checks the wrapper's own signature
        return GatewayEntrypoint.decorator(method, werkzeug_path)(handler)

    return decorate


_PARSED_JSON = "mpp.json"  # where read_json keeps the parsed body in the WSGI environ


def read_json(request) -> dict:
    """The JSON object of the body (``{}`` if empty), bounded by ``mpp_gateway.inputs``:
    400 if malformed or nested deeper than ``MAX_JSON_DEPTH``, 422 for a NUL or a lone
    surrogate in any key or string. Parsed once per request: a route that passes the body on
    as the client sent it (its service loads it with the same schema) reads it here after
    :func:`route` validated it."""
    parsed = request.environ.get(_PARSED_JSON)
    if parsed is not None:
        return parsed
    raw = request.get_data(cache=True)
    if not raw:
        return {}
    body = inputs.parse_json(raw)
    if not isinstance(body, dict):
        raise errors.BadRequest("MALFORMED_JSON", "request body must be a JSON object")
    request.environ[_PARSED_JSON] = body
    return body


def load_body(request, schema: type[Schema]) -> dict:
    """The body loaded by a route's declared ``body`` schema (422 ``VALIDATION_FAILED`` naming
    the fields, through :func:`error_response`)."""
    return shared(schema).load(read_json(request))
