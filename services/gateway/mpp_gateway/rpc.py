"""The gateway's RPC proxies: bounded like every service's, and timed.

Every RPC the gateway makes goes through ``TimedRpcProxy``, so ``mpp_rpc_call_seconds``
(by target service) observes each call, including the ones that time out (503).
"""

from __future__ import annotations

import time

from mpp_chassis.calls import BoundedRpcProxy, BoundedServiceProxy
from mpp_gateway.metrics import rpc_latency


class TimedServiceProxy(BoundedServiceProxy):
    def __getattr__(self, method_name: str):
        call = super().__getattr__(method_name)
        histogram = rpc_latency(self._service_name)

        def timed(*args, **kwargs):
            started = time.perf_counter()
            try:
                return call(*args, **kwargs)
            finally:
                histogram.observe(time.perf_counter() - started)

        return timed


class TimedRpcProxy(BoundedRpcProxy):
    proxy_class = TimedServiceProxy
