"""Playwright (PyPI) driving Debian's chromium (``executable_path``: no browser download) against
a real mall started by the test: four service processes, RabbitMQ, real HTTP."""

from __future__ import annotations

import shutil
import signal

import pytest
import requests

from tests.support import infra
from tests.support.infra import wait_until
from tests.support.mall import MALL_ADMIN_KEY

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

# speechSynthesis as the board sees it, recording what it is asked to say (window.__spoken) and
# finishing each utterance after a short while, as a real voice does
SPEECH_STUB = """
(() => {
  window.__spoken = [];
  class Utterance {
    constructor(text) { this.text = text; this.lang = ""; this.voice = null; }
  }
  const voice = { lang: "id-ID", name: "Stub Bahasa Indonesia", default: true };
  window.SpeechSynthesisUtterance = Utterance;
  Object.defineProperty(window, "speechSynthesis", {
    configurable: true,
    value: {
      getVoices: () => [voice],
      speak(u) {
        window.__spoken.push({ text: u.text, lang: u.lang });
        setTimeout(() => u.onend && u.onend(), 50);
      },
      cancel() {},
    },
  });
})();
"""

PHONE = {"width": 360, "height": 800}
KIOSK = {"width": 1080, "height": 1920}
TV = {"width": 1920, "height": 1080}


@pytest.fixture(scope="session")
def browser():
    if CHROMIUM is None:
        pytest.skip("Debian's chromium is not installed (.ci/run installs it)")
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=20_000)  # the ticket page polls every 5 s, as a phone should
    # Not stopped: under the suite's eventlet monkey-patching, Playwright.stop() waits forever
    # for its driver; the driver ends with this process (its pipe closes).
    playwright = sync_playwright().start()
    browser = playwright.chromium.launch(
        executable_path=CHROMIUM,
        args=["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"],
    )
    yield browser
    browser.close()


@pytest.fixture(scope="module")
def module_mall(tmp_path_factory, migrated_templates):
    """One mall (SQLite) for a module whose tests each set up agencies of their own and read
    nothing mall-wide, started once (~8 s a mall): its tests share it."""
    from tests.support.mall import SERVICES, Mall

    infra.require_rabbitmq()
    vhost = infra.create_vhost()
    tmp = tmp_path_factory.mktemp("mall")
    urls = {name: f"sqlite:///{tmp}/{name}.db" for name in SERVICES}
    mall = Mall(infra.uri_for_vhost(vhost), urls, tmp, templates=migrated_templates)
    try:
        yield mall.start()
    finally:
        mall.stop(signal.SIGKILL)  # nothing more is asserted (tests/conftest.py's mall_factory)
        if vhost:
            infra.delete_vhost(vhost)


@pytest.fixture
def new_page(browser):
    contexts = []

    def make(viewport=PHONE, *, speech: bool = False):
        context = browser.new_context(viewport=viewport, locale="id-ID")
        if speech:
            context.add_init_script(SPEECH_STUB)
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(20_000)
        return page

    yield make
    for context in contexts:
        context.close()


def spoken(page) -> list[str]:
    """What the board asked its voice to say, in order (the page's CSP forbids eval, so no
    wait_for_function: the test polls with a deadline)."""
    return [u["text"] for u in page.evaluate("window.__spoken")]


def wait_spoken(page, count: int, timeout: float = 30) -> list[str]:
    wait_until(lambda: len(spoken(page)) >= count, timeout, 0.1, f"{count} utterances")
    return spoken(page)


def bearer(key: str) -> dict:
    return {"Authorization": f"Bearer {key}"}


class Agency:
    """One agency set up through the API as its admin would: a paid service, a counter, an
    officer's key and a board's display key."""

    def __init__(self, url: str, code: str = "SAMSAT", fee_idr: int = 125000):
        self.url = url
        created = self.post(
            "/v1/agencies", MALL_ADMIN_KEY, {"code": code, "name": f"Kantor {code}"}
        )
        self.id = created["id"]
        self.code = code
        self.admin = created["admin_api_key"]["key"]
        self.service = self.post(
            f"/v1/agencies/{self.id}/services",
            self.admin,
            {
                "code": f"{code}-1",
                "name": "Pajak STNK tahunan",
                "fee_idr": fee_idr,
                "sla_minutes": 30,
                "prefix": "S",
                "requirements": ["KTP-el", "STNK asli"],
            },
        )
        self.counter = self.post(
            f"/v1/agencies/{self.id}/counters",
            self.admin,
            {"name": "Loket 3", "service_ids": [self.service["id"]]},
        )
        self.officer = self.key("officer")
        self.display = self.key("display")

    def post(self, path: str, key: str | None, body: dict | None = None) -> dict:
        response = requests.post(
            f"{self.url}{path}", headers=bearer(key) if key else {}, json=body, timeout=10
        )
        assert response.status_code in (200, 201, 202), response.text
        return response.json()

    def key(self, role: str) -> str:
        return self.post(f"/v1/agencies/{self.id}/api-keys", self.admin, {"role": role})["key"]

    def call_next(self) -> dict:
        return self.post(f"/v1/counters/{self.counter['id']}/call-next", self.officer)

    def act(self, ticket_id: str, action: str) -> dict:
        return self.post(f"/v1/tickets/{ticket_id}/{action}", self.officer, {})

    def rating_token(self, ticket: dict) -> str:
        """The one-time token the citizen's ticket page shows once they are invited to rate."""
        return wait_until(
            lambda: (
                requests.get(
                    f"{self.url}/v1/tickets/{ticket['id']}",
                    params={"code": ticket["access_code"]},
                    timeout=10,
                )
                .json()
                .get("rating")
                or {}
            ).get("token"),
            30,
            message="the rating invitation",
        )

    def take(self) -> dict:
        return self.post("/v1/tickets", None, {"service_id": self.service["id"]})
