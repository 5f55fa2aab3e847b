"""The gateway's ops endpoints: liveness, readiness (broker and every service answer), metrics."""

from __future__ import annotations

import eventlet
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from werkzeug.wrappers import Response

from mpp_chassis.web import json_response
from mpp_gateway.http import route

SERVICES = ("queue", "payment", "rating")


class GatewayOps:
    @route("GET", "/healthz")
    def healthz(self, request, principal):
        return json_response({"status": "ok"})

    @route("GET", "/readyz")
    def readyz(self, request, principal):
        """Ready when each service answers its health RPC (through the broker) in time."""
        calls = {name: eventlet.spawn(self._health_of, name) for name in SERVICES}
        checks = {name: call.wait() for name, call in calls.items()}
        ready = all(status == "ok" for status in checks.values())
        return json_response(
            {"status": "ok" if ready else "unavailable", "checks": checks},
            status=200 if ready else 503,
        )

    def _health_of(self, name: str) -> str:
        try:
            getattr(self, f"{name}_rpc").health()
        except Exception as exc:
            return type(exc).__name__
        return "ok"

    @route("GET", "/metrics")
    def metrics(self, request, principal):
        return Response(generate_latest(), mimetype=CONTENT_TYPE_LATEST)
