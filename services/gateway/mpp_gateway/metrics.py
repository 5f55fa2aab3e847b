"""Gateway metrics: requests by route and status, latency, RPC latency, open display streams."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

REQUESTS = Counter("mpp_http_requests_total", "HTTP requests", ["method", "route", "status"])
LATENCY = Histogram("mpp_http_request_seconds", "HTTP request latency", ["method", "route"])
RPC_LATENCY = Histogram("mpp_rpc_call_seconds", "RPC call latency from the gateway", ["service"])
OPEN_STREAMS = Gauge("mpp_display_streams_open", "Open display SSE streams")


# the labelled series, found once each: ``labels()`` takes a lock and builds its key per call
_REQUEST_SERIES: dict[tuple[str, str, int], tuple] = {}
_RPC_SERIES: dict[str, Histogram] = {}


def observe_request(method: str, route: str, status: int, seconds: float) -> None:
    series = _REQUEST_SERIES.get((method, route, status))
    if series is None:
        series = _REQUEST_SERIES[method, route, status] = (
            REQUESTS.labels(method, route, str(status)),
            LATENCY.labels(method, route),
        )
    series[0].inc()
    series[1].observe(seconds)


def rpc_latency(service: str) -> Histogram:
    """The ``mpp_rpc_call_seconds`` series of calls to ``service``."""
    series = _RPC_SERIES.get(service)
    if series is None:
        series = _RPC_SERIES[service] = RPC_LATENCY.labels(service)
    return series
