"""The gateway's HTTP API as the command line sees it: settings, one session, the error envelope."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
import yaml

DEFAULT_URL = "http://localhost:8000"
LOCAL_ADMIN_KEY = "local-mall-admin-key"  # the laptop default of MALL_ADMIN_KEY (README)


def profile_path() -> Path:
    if path := os.environ.get("MPP_CONFIG"):
        return Path(path)
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "mpp" / "profiles.yaml"


@dataclass
class Settings:
    url: str
    key: str | None
    source: str  # where the key came from, for messages

    @classmethod
    def resolve(cls, url: str | None, key: str | None, profile: str | None) -> Settings:
        """Flags first, then MALL_URL / MPP_KEY, then the profile file (``MPP_PROFILE`` or
        ``default``); without any key, the local mall's public default admin key."""
        chosen: dict[str, Any] = {}
        path = profile_path()
        name = profile or os.environ.get("MPP_PROFILE") or "default"
        if path.exists():
            data = yaml.safe_load(path.read_text()) or {}
            chosen = (data.get("profiles") or {}).get(name) or {}
            if profile and not chosen:
                raise UsageError(f"no profile {profile!r} in {path}")
        elif profile:
            raise UsageError(f"no profile file {path} (profile {profile!r} asked)")
        url = url or os.environ.get("MALL_URL") or chosen.get("url") or DEFAULT_URL
        if key:
            source = "--key"
        elif os.environ.get("MPP_KEY"):
            key, source = os.environ["MPP_KEY"], "MPP_KEY"
        elif chosen.get("key"):
            key, source = chosen["key"], f"profile {name} in {path}"
        else:
            key, source = LOCAL_ADMIN_KEY, "the local default admin key"
        return cls(url=url.rstrip("/"), key=key, source=source)


class UsageError(Exception):
    pass


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, details: Any = None):
        super().__init__(f"{status} {code}: {message}")
        self.status, self.code, self.message, self.details = status, code, message, details


class Client:
    def __init__(self, settings: Settings, timeout: float = 15):
        self.settings = settings
        self.timeout = timeout
        self.session = requests.Session()
        if settings.key:
            self.session.headers["Authorization"] = f"Bearer {settings.key}"

    def request(self, method: str, path: str, *, key: str | None = None, **kwargs) -> Any:
        headers = kwargs.pop("headers", {})
        if key:
            headers["Authorization"] = f"Bearer {key}"
        try:
            response = self.session.request(
                method, self.settings.url + path, headers=headers, timeout=self.timeout, **kwargs
            )
        except requests.ConnectionError as exc:
            raise ApiError(0, "UNREACHABLE", f"no mall answers at {self.settings.url}") from exc
        if response.status_code == 204:
            return None
        try:
            body = response.json()
        except ValueError:
            body = None
        if response.status_code >= 400:
            error = (body or {}).get("error") if isinstance(body, dict) else None
            error = error or {"code": "HTTP_ERROR", "message": response.text[:200]}
            raise ApiError(
                response.status_code, error.get("code"), error.get("message"), error.get("details")
            )
        return body

    def get(self, path: str, **kwargs) -> Any:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, body: Any = None, **kwargs) -> Any:
        return self.request("POST", path, json=body if body is not None else {}, **kwargs)

    def patch(self, path: str, body: Any, **kwargs) -> Any:
        return self.request("PATCH", path, json=body, **kwargs)

    def delete(self, path: str, **kwargs) -> Any:
        return self.request("DELETE", path, **kwargs)

    def all(self, path: str, params: dict | None = None, **kwargs) -> list[dict]:
        """Every item of a paginated list (``{"items", "next_cursor"}``), 100 at a time."""
        items: list[dict] = []
        query = {**(params or {}), "limit": 100}
        while True:
            page = self.get(path, params=query, **kwargs)
            items.extend(page["items"])
            if not page.get("next_cursor"):
                return items
            query["cursor"] = page["next_cursor"]
