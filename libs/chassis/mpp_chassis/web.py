"""HTTP entry points whose workers carry the request's correlation id (``X-Request-ID``)."""

from __future__ import annotations

import json
import re
import uuid

import eventlet
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
    def start(self):
        """nameko's ``start``, but the port is bound without ``SO_REUSEPORT`` (eventlet sets it
        unless told not to). With it, a second process started on a taken port bound it as well
        and the kernel shared the connections between the two: a gateway's requests went half
        to a service's health endpoint and came back as HTML 404s. Now the second process fails
        to start, saying the address is in use."""
        if not self._starting:
            self._starting = True
            self._sock = eventlet.listen(self.bind_addr, reuse_port=False)
            self._sock.settimeout(None)  # as nameko: kombu issue 838
            self._serv = self.get_wsgi_server(self._sock, self.get_wsgi_app())
            self._gt = self.container.spawn_managed_thread(self.run)

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
