"""Gateway metrics: requests by route and status, latency, RPC latency, open display streams."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

REQUESTS = Counter("mpp_http_requests_total", "HTTP requests", ["method", "route", "status"])
LATENCY = Histogram("mpp_http_request_seconds", "HTTP request latency", ["method", "route"])
RPC_LATENCY = Histogram("mpp_rpc_call_seconds", "RPC call latency from the gateway", ["service"])
OPEN_STREAMS = Gauge("mpp_display_streams_open", "Open display SSE streams")


def observe_request(method: str, route: str, status: int, seconds: float) -> None:
    REQUESTS.labels(method, route, str(status)).inc()
    LATENCY.labels(method, route).observe(seconds)
