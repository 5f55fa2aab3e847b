"""Set up a mall floor through the public HTTP API (the same calls a mall admin would make)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

import requests

from tests.support.mall import MALL_ADMIN_KEY


def bearer(key: str) -> dict:
    return {"Authorization": f"Bearer {key}"}


def _created(answer: requests.Response) -> dict:
    if answer.status_code != 201:
        raise RuntimeError(
            f"{answer.request.method} {answer.url}: {answer.status_code} {answer.text}"
        )
    return answer.json()


@dataclass
class Floor:
    url: str
    agency_id: str
    admin_key: str
    officer_key: str
    services: dict[str, str] = field(default_factory=dict)  # code -> id
    counters: dict[str, list[str]] = field(default_factory=dict)  # service code -> counter ids

    @property
    def officer(self) -> dict:
        return bearer(self.officer_key)

    def add_service(self, code: str, prefix: str, *, fee_idr: int = 0, counters: int = 1) -> str:
        service = _created(
            requests.post(
                f"{self.url}/v1/agencies/{self.agency_id}/services",
                headers=bearer(self.admin_key),
                json={
                    "code": code,
                    "name": f"Layanan {code}",
                    "fee_idr": fee_idr,
                    "sla_minutes": 60,
                    "prefix": prefix,
                },
                timeout=10,
            )
        )
        self.services[code] = service["id"]
        self.counters[code] = [
            _created(
                requests.post(
                    f"{self.url}/v1/agencies/{self.agency_id}/counters",
                    headers=bearer(self.admin_key),
                    json={"name": f"Loket {code}{i}", "service_ids": [service["id"]]},
                    timeout=10,
                )
            )["id"]
            for i in range(1, counters + 1)
        ]
        return service["id"]


def open_floor(url: str, code: str | None = None) -> Floor:
    """Register an agency and issue its officer key; add services with ``Floor.add_service``."""
    code = code or f"B{uuid.uuid4().hex[:6].upper()}"
    agency = _created(
        requests.post(
            f"{url}/v1/agencies",
            headers=bearer(MALL_ADMIN_KEY),
            json={"code": code, "name": f"Instansi {code}"},
            timeout=10,
        )
    )
    admin_key = agency["admin_api_key"]["key"]
    officer = _created(
        requests.post(
            f"{url}/v1/agencies/{agency['id']}/api-keys",
            headers=bearer(admin_key),
            json={"role": "officer"},
            timeout=10,
        )
    )
    return Floor(url, agency["id"], admin_key, officer["key"])
