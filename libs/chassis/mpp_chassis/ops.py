"""Health, readiness and metrics for every service (RPC for the gateway, HTTP for probes)."""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text
from werkzeug.wrappers import Response

from mpp_chassis.messaging import refresh_dead_letters, rpc
from mpp_chassis.web import http, json_response


class OpsEndpoints:
    """Mixed into each service class that has ``uow`` (a :class:`~mpp_chassis.db.Database`)."""

    name: str

    @rpc
    def health(self) -> dict:
        """Answer only if this service can reach its database (the gateway's /readyz asks)."""
        self.uow.session.execute(text("SELECT 1"))
        return {"service": self.name, "status": "ok"}

    @http("GET", "/healthz")
    def healthz(self, request) -> Response:
        return json_response({"service": self.name, "status": "ok"})

    @http("GET", "/readyz")
    def readyz(self, request) -> Response:
        try:
            self.uow.session.execute(text("SELECT 1"))
        except Exception:
            return json_response({"service": self.name, "status": "unavailable"}, status=503)
        return json_response({"service": self.name, "status": "ok"})

    @http("GET", "/metrics")
    def metrics(self, request) -> Response:
        config = getattr(self, "config", None) or {}
        refresh_dead_letters(config.get("AMQP_URI"))
        return Response(generate_latest(), mimetype=CONTENT_TYPE_LATEST)
