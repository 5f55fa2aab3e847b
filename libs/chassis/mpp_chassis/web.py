"""HTTP entry points whose workers carry the request's correlation id (``X-Request-ID``)."""

from __future__ import annotations

import json
import re
import uuid

from nameko.web.handlers import HttpRequestHandler
from nameko.web.server import WebServer
from werkzeug.wrappers import Response

from mpp_chassis.context import CORRELATION_KEY

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")


def request_id_from(headers) -> str:
    """Accept a well-formed client request id, otherwise make one (never trust it blindly)."""
    value = headers.get("X-Request-ID", "")
    return value if _REQUEST_ID.match(value) else str(uuid.uuid4())


class CorrelatedWebServer(WebServer):
    def context_data_from_headers(self, request):
        request_id = request.environ.get("mpp.request_id") or request_id_from(request.headers)
        request.environ["mpp.request_id"] = request_id
        return {CORRELATION_KEY: request_id}


class HttpEntrypoint(HttpRequestHandler):
    server = CorrelatedWebServer()


http = HttpEntrypoint.decorator


def json_response(body, status: int = 200, headers: dict | None = None) -> Response:
    return Response(
        json.dumps(body, separators=(",", ":")),
        status=status,
        headers=headers or {},
        mimetype="application/json",
    )
