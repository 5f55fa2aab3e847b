"""The framework's ceiling: a trivial nameko ``@http`` handler making ONE RPC to a trivial service.

It is the cost of one gateway hop with nothing of the mall in it (no auth, no database, no
outbox). ``bench/run.py`` starts each class as its own ``nameko run`` process, exactly like the
gateway and the queue service, and loads it with the same generator, so the ratio is fair.
"""

from __future__ import annotations

import json

from nameko.rpc import RpcProxy, rpc
from nameko.web.handlers import http
from werkzeug.wrappers import Response


class CeilingBackend:
    name = "ceiling_backend"

    @rpc
    def echo(self, data: dict) -> dict:
        return {"ok": True, "echo": data}


class CeilingFront:
    name = "ceiling_front"

    backend_rpc = RpcProxy("ceiling_backend")

    @http("POST", "/ping")
    def ping(self, request) -> Response:
        answer = self.backend_rpc.echo(json.loads(request.get_data() or b"{}"))
        return Response(json.dumps(answer), status=201, mimetype="application/json")

    @http("GET", "/healthz")
    def healthz(self, request) -> Response:
        return Response('{"status": "ok"}', mimetype="application/json")
