"""The one client every outgoing provider call goes through: timeouts, bounded retries, JSON.

Retries happen on connection errors, timeouts, 429 and 5xx, with exponential backoff, and only
for requests that are safe to repeat: reads, and writes that carry an idempotency key the provider
honours (Midtrans ``refund_key``, Xendit ``Idempotency-key``, a charge's unique ``order_id``).
A 4xx is the provider's answer and is returned, never retried.

The transport is a plain callable so tests replay recorded request/response pairs (no internet).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import requests

_log = logging.getLogger(__name__)

# (method, url, headers, body bytes or None, timeout) -> (status, body bytes)
Transport = Callable[[str, str, dict, bytes | None, tuple[float, float]], tuple[int, bytes]]


class ProviderUnavailable(Exception):
    """The provider did not answer usefully after all retries (timeouts, 5xx, broken JSON)."""


@dataclass(frozen=True)
class HttpAnswer:
    status: int
    body: dict[str, Any]


def requests_transport(session: requests.Session | None = None) -> Transport:
    http = session or requests.Session()

    def send(method, url, headers, body, timeout):
        response = http.request(method, url, headers=headers, data=body, timeout=timeout)
        return response.status_code, response.content

    return send


class ProviderHttp:
    """JSON over HTTPS to one provider's base URL, with Basic auth ``(username, "")``."""

    def __init__(
        self,
        base_url: str,
        *,
        username: str,
        transport: Transport | None = None,
        connect_timeout: float = 3.05,
        read_timeout: float = 10.0,
        retries: int = 2,
        backoff: float = 0.5,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._auth = requests.auth._basic_auth_str(username, "")
        self._transport = transport or requests_transport()
        self._timeout = (connect_timeout, read_timeout)
        self._retries = retries
        self._backoff = backoff
        self._sleep = sleep

    def request(
        self,
        method: str,
        path: str,
        body: dict | None = None,
        *,
        headers: dict | None = None,
        idempotent: bool | None = None,
    ) -> HttpAnswer:
        url = self.base_url + path
        all_headers = {
            "Accept": "application/json",
            "Authorization": self._auth,
            **({"Content-Type": "application/json"} if body is not None else {}),
            **(headers or {}),
        }
        data = json.dumps(body, separators=(",", ":")).encode() if body is not None else None
        repeatable = method == "GET" if idempotent is None else idempotent
        attempts = 1 + (self._retries if repeatable else 0)
        last = "no attempt"
        for attempt in range(attempts):
            if attempt:
                self._sleep(self._backoff * 2 ** (attempt - 1))
            try:
                status, raw = self._transport(method, url, all_headers, data, self._timeout)
            except (requests.Timeout, requests.ConnectionError) as exc:
                last = type(exc).__name__
                _log.warning("provider call failed", extra={"url": path, "error": last})
                continue
            if status == 429 or status >= 500:
                last = f"HTTP {status}"
                continue
            try:
                parsed = json.loads(raw) if raw else {}
            except ValueError:
                raise ProviderUnavailable(f"{method} {path}: answer is not JSON") from None
            return HttpAnswer(status, parsed if isinstance(parsed, dict) else {"items": parsed})
        raise ProviderUnavailable(f"{method} {path}: {last} after {attempts} attempt(s)")
