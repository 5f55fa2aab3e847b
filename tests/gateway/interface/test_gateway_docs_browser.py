"""``/docs`` renders in headless Chromium from the gateway's own files, with no outside request."""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (.ci/run does)")
def test_docs_render_the_api_title_with_no_outside_request(gateway, tmp_path):
    netlog = tmp_path / "netlog.json"
    result = subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--disable-dev-shm-usage",
            f"--user-data-dir={tmp_path / 'profile'}",
            f"--log-net-log={netlog}",
            "--virtual-time-budget=15000",
            "--dump-dom",
            f"{gateway.url}/docs",
        ],
        capture_output=True,
        text=True,
        timeout=90,
    )
    dom = result.stdout
    assert "Mal Pelayanan Publik API" in dom, result.stderr[-2000:]
    assert "issue_api_key" in dom or "/v1/agencies/{agency}/api-keys" in dom
    text = netlog.read_text().rstrip()
    if not text.endswith("}"):  # a log cut short at exit: close its events list
        text = text.rstrip(",") + "]}"
    # requests made for the page carry its site in their network isolation key; the browser's
    # own housekeeping (update and clock checks, which no flag fully silences) carries none
    urls = {
        event["params"]["url"]
        for event in json.loads(text).get("events", [])
        if isinstance(event.get("params"), dict)
        and "url" in event["params"]
        and str(event["params"].get("network_isolation_key", "")).startswith("http://127.0.0.1")
    }
    assert any(u.startswith(gateway.url) for u in urls), urls
    outside = [u for u in urls if not re.match(r"^(http://127\.0\.0\.1[:/]|data:|blob:)", u)]
    assert outside == [], outside
