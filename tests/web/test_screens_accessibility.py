"""Every screen at its device size, in chromium against a real mall: axe-core (vendored from npm
for the tests) finds no serious or critical accessibility violation. With MPP_SCREENSHOTS set to
a folder (``make screenshots``: docs/screenshots), each screen is also saved there as a PNG."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.web.conftest import KIOSK, PHONE, TV, Agency, wait_spoken

pytestmark = pytest.mark.e2e

AXE = (Path(__file__).parent / "vendor" / "axe.min.js").read_text()
DESK = {"width": 1366, "height": 768}
SHOTS = os.environ.get("MPP_SCREENSHOTS")


def check(page, name: str) -> None:
    """axe over the page as it stands (evaluated through the DevTools protocol, which the page's
    CSP does not govern: the screens themselves never evaluate strings)."""
    page.evaluate(AXE)
    result = page.evaluate(
        "axe.run(document, {runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21aa']}})"
    )
    assert len(result["passes"]) > 10, result["passes"]  # axe ran its rules on this page
    bad = [
        (v["id"], v["impact"], [n["target"] for n in v["nodes"]][:3])
        for v in result["violations"]
        if v["impact"] in ("serious", "critical")
    ]
    assert bad == [], f"{name}: {bad}"
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SHOTS) / f"{name}.png"))


def test_every_screen_passes_axe_at_its_device_size(mall_factory, new_page):
    mall = mall_factory("sqlite")
    agency = Agency(mall.url)
    other = Agency(mall.url, code="DUKCAPIL", fee_idr=0)
    other.post(
        f"/v1/agencies/{other.id}/services",
        other.admin,
        {
            "code": "KTP",
            "name": "KTP-el baru",
            "fee_idr": 0,
            "sla_minutes": 60,
            "prefix": "K",
            "opening_hours": [{"opens": "08:00", "closes": "12:00"}],
            "booking": {"slot_minutes": 30, "capacity": 4},
        },
    )

    kiosk = new_page(KIOSK)
    kiosk.goto(f"{mall.url}/kiosk")
    expect(kiosk.locator(f"[data-agency='{agency.code}']")).to_be_visible()
    check(kiosk, "kiosk-agencies")
    kiosk.click(f"[data-agency='{agency.code}']")
    kiosk.click(f"[data-service='{agency.service['code']}']")
    expect(kiosk.locator("#take")).to_be_visible()
    check(kiosk, "kiosk-service")
    kiosk.click("#take")
    expect(kiosk.locator("#number")).to_have_text("S-001")
    link = kiosk.locator("#ticket-link").get_attribute("href")
    check(kiosk, "kiosk-slip")
    kiosk.click("#slip ~ .actions .back")
    kiosk.click("#check-in")
    kiosk.fill("#booking-code", "bukan-kode")
    kiosk.keyboard.press("Enter")
    expect(kiosk.locator("#notice")).to_be_visible()
    check(kiosk, "kiosk-checkin")
    kiosk.click(".back")

    board = new_page(TV, speech=True)
    board.goto(f"{mall.url}/board#key={agency.display}")
    board.click("#sound")
    wait_spoken(board, 1)
    agency.take()
    called = agency.call_next()
    wait_spoken(board, 2)
    check(board, "board")

    console = new_page(DESK)
    console.goto(f"{mall.url}/counter?counter={agency.counter['id']}#key={agency.officer}")
    expect(console.locator("#current-number")).to_have_text("S-001")
    check(console, "counter")

    phone = new_page(PHONE)
    phone.goto(link)
    expect(phone.locator("#status")).to_contain_text("Dipanggil")
    check(phone, "ticket-called")
    agency.act(called["id"], "start")
    agency.act(called["id"], "complete")
    expect(phone.locator("#qris")).to_be_visible()
    check(phone, "ticket-qris")
    expect(console.locator("#current")).to_contain_text("Tidak ada tiket")
    console.click("#open-close")
    expect(console.locator("#counter-state")).to_have_text("Loket tutup")
    check(console, "counter-closed")
    payment = phone.evaluate(
        f"fetch('/v1/tickets/{called['id']}/payment' + location.search).then(r => r.json())"
    )
    agency.post(f"/v1/simulator/payments/{payment['id']}/pay", agency.admin)
    expect(phone.locator("#rate-form")).to_be_visible(timeout=30_000)
    phone.locator("#rate-form summary").click()
    check(phone, "ticket-rating")

    book = new_page(PHONE)
    book.goto(f"{mall.url}/book")
    book.click("[data-service='KTP']")
    book.locator("[data-day]").nth(1).click()
    expect(book.locator("[data-slot]").first).to_be_visible()
    check(book, "book-slots")
    book.locator("[data-slot]").first.click()
    expect(book.locator("#nik")).to_be_visible()
    check(book, "book-nik")


# -- the mall's own pages (issue 17): the public IKM page and the mall admin's page


def test_the_mall_pages_pass_axe(mall_factory, new_page):
    """/ikm on a phone and a desk (ranked agencies and one not yet representative, its elements
    open), /mall's sign-in and the signed-in page on a desk."""
    from tests.support.mall import MALL_ADMIN_KEY
    from tests.web.test_screens_ikm import rated_mall

    mall = mall_factory("sqlite")
    best, _, _ = rated_mall(mall.url)
    best.take()  # one citizen waiting: the mall admin's figures are not all zero

    phone = new_page(PHONE)
    phone.goto(f"{mall.url}/ikm")
    expect(phone.locator("#ranked > li")).to_have_count(2)
    check(phone, "ikm-phone")
    desk = new_page(DESK)
    desk.goto(f"{mall.url}/ikm")
    expect(desk.locator("#unranked > li")).to_have_count(1)
    desk.locator("#ranked > li").first.locator("details summary").click()
    check(desk, "ikm-desktop")

    admin = new_page(DESK)
    admin.goto(f"{mall.url}/mall")
    expect(admin.locator("#login-form")).to_be_visible()
    check(admin, "mall-login")
    admin.fill("#mall-key", MALL_ADMIN_KEY)
    admin.click("#login-form button[type=submit]")
    expect(admin.locator("#kpi-tickets")).to_have_text("5")
    admin.locator(f"#agency-list [data-manage='{best.code}']").click()
    expect(admin.locator("#agency-keys tr")).to_have_count(3)  # first admin, officer, display
    unranked = admin.locator("#by-agency tr", has_text="IMIGRASI")
    expect(unranked).to_contain_text("belum representatif")
    admin.evaluate("window.scrollTo(0, 0)")
    check(admin, "mall")
