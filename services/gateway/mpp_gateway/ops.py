"""The gateway's ops endpoints: liveness, readiness (broker and every service answer), metrics,
and the API's own description: ``/openapi.json`` and the ``/docs`` page served from local files."""

from __future__ import annotations

import json
import mimetypes
from importlib import resources

import eventlet
from kombu import Connection
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from werkzeug.wrappers import Response

from mpp_chassis.web import json_response
from mpp_contracts.errors import NotFound
from mpp_gateway.http import route

SERVICES = ("queue", "payment", "rating")
STATIC = resources.files("mpp_gateway") / "static"
# the Swagger UI release vendored by the swagger-ui-bundle wheel (PyPI), served from this host
DOCS_ASSETS = {
    "swagger-ui.css": "swagger-ui.css",
    "swagger-ui-bundle.js": "swagger-ui-bundle.js",
    "favicon-32x32.png": "favicon-32x32.png",
}


class GatewayOps:
    @route("GET", "/healthz", summary="Liveness: the process answers")
    def healthz(self, request, principal):
        return json_response({"status": "ok"})

    @route("GET", "/readyz", summary="Readiness: the broker and every service answer in time")
    def readyz(self, request, principal):
        calls = {name: eventlet.spawn(self._health_of, name) for name in SERVICES}
        checks = {"broker": self._broker_check()}
        checks.update({name: call.wait() for name, call in calls.items()})
        ready = all(status == "ok" for status in checks.values())
        return json_response(
            {"status": "ok" if ready else "unavailable", "checks": checks},
            status=200 if ready else 503,
        )

    def _broker_check(self) -> str:
        try:
            with Connection(self.config["AMQP_URI"], connect_timeout=2) as conn:
                conn.ensure_connection(max_retries=1, timeout=2)
        except Exception as exc:
            return type(exc).__name__
        return "ok"

    def _health_of(self, name: str) -> str:
        try:
            getattr(self, f"{name}_rpc").health()
        except Exception as exc:
            return type(exc).__name__
        return "ok"

    @route("GET", "/metrics", summary="Prometheus metrics", media_type="text/plain")
    def metrics(self, request, principal):
        return Response(generate_latest(), mimetype=CONTENT_TYPE_LATEST)

    @route("GET", "/openapi.json", summary="This API's OpenAPI 3 document")
    def openapi(self, request, principal):
        from mpp_gateway.http import ROUTES
        from mpp_gateway.openapi import build_spec

        names = sorted({r.requires[0] for r in ROUTES if r.requires})
        settings = tuple((name, str(self.config.get(name, ""))) for name in names)
        return Response(json.dumps(build_spec(settings)), mimetype="application/json")

    @route("GET", "/docs", summary="Human documentation of the API", media_type="text/html")
    def docs(self, request, principal):
        return Response((STATIC / "docs.html").read_bytes(), mimetype="text/html")

    @route("GET", "/docs/{asset}", media_type="application/octet-stream")
    def docs_asset(self, request, principal, asset):
        if asset == "init.js":
            body = (STATIC / "init.js").read_bytes()
        elif asset in DOCS_ASSETS:
            from swagger_ui_bundle import swagger_ui_path

            body = (swagger_ui_path / DOCS_ASSETS[asset]).read_bytes()
        else:
            raise NotFound("ROUTE_NOT_FOUND", "no such documentation file")
        mimetype = mimetypes.guess_type(asset)[0] or "application/octet-stream"
        return Response(body, mimetype=mimetype, headers={"Cache-Control": "max-age=3600"})
