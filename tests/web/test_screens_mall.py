"""The mall admin's screen in chromium against a real mall: the mall_admin key typed once and
kept on the device; an agency registered with its first key shown once; an agency key issued
and revoked (then 401); a pairing code for a mall-wide board; the mall_admin keys with the one in
use marked and a warning before revoking it; the day's queue figures; axe."""

from __future__ import annotations

import re

import pytest
import requests
from playwright.sync_api import expect

from tests.support.mall import MALL_ADMIN_KEY
from tests.web.conftest import Agency, bearer
from tests.web.test_screens_accessibility import check

pytestmark = pytest.mark.e2e

DESK = {"width": 1366, "height": 768}


def status(url: str, path: str, key: str) -> int:
    return requests.get(f"{url}{path}", headers=bearer(key), timeout=10).status_code


def test_the_mall_admin_registers_an_agency_and_manages_keys(mall_factory, new_page):
    mall = mall_factory("sqlite")
    samsat = Agency(mall.url)
    samsat.take()

    served = requests.get(f"{mall.url}/mall", timeout=10)  # as the other screens are served
    assert "script-src 'self'" in served.headers["Content-Security-Policy"], served.headers
    assert served.headers["Cache-Control"] == "no-cache"

    page = new_page(DESK)
    page.goto(f"{mall.url}/mall")
    expect(page.locator("#login-form")).to_be_visible()
    expect(page.locator("#admin")).to_be_hidden()  # nothing of the mall before a key
    page.fill("#mall-key", "not-a-key")
    page.click("#login-form button[type=submit]")
    expect(page.locator("#login-form [role=alert]")).to_contain_text("Kunci salah")
    page.fill("#mall-key", samsat.admin)  # an agency admin is not the mall admin
    page.click("#login-form button[type=submit]")
    expect(page.locator("#login-form [role=alert]")).to_contain_text("bukan kunci admin mal")
    page.fill("#mall-key", MALL_ADMIN_KEY)
    page.click("#login-form button[type=submit]")
    expect(page.locator("#admin")).to_be_visible()
    # the day's figures, mall-wide: SAMSAT's one ticket
    expect(page.locator("#kpi-tickets")).to_have_text("1")
    samsat_row = page.locator(f"#by-agency tr[data-agency='{samsat.id}']")
    expect(samsat_row).to_contain_text("Kantor SAMSAT")

    # kept on the device, never in the address
    page.reload()
    expect(page.locator("#admin")).to_be_visible()
    assert MALL_ADMIN_KEY not in page.url

    # register an agency: its first agency_admin key, shown once
    page.fill("#agency-code", "pajak")
    page.fill("#agency-name", "Kantor Pelayanan Pajak")
    page.click("#register button[type=submit]")
    secret = page.locator("#agency-secret .secret-key")
    expect(secret).to_be_visible()
    first_admin = secret.inner_text()
    expect(page.locator("#agency-list [data-agency='PAJAK']")).to_be_visible()
    agency_id = next(
        a["id"]
        for a in requests.get(f"{mall.url}/v1/agencies", timeout=10).json()["items"]
        if a["code"] == "PAJAK"
    )
    assert status(mall.url, f"/v1/agencies/{agency_id}/api-keys", first_admin) == 200
    page.click("#agency-secret button")
    expect(page.locator("#agency-secret .secret-key")).to_have_count(0)
    assert first_admin not in page.content()

    # its keys: issue an agency_admin key, see it listed, revoke it: 401 from then on
    expect(page.locator("#keys-title")).to_have_text("Kunci Kantor Pelayanan Pajak")
    page.select_option("#issue-role", "agency_admin")
    page.fill("#issue-label", "Kepala kantor")
    page.click("#issue button[type=submit]")
    issued = page.locator("#key-secret .secret-key")
    expect(issued).to_be_visible()
    deputy = issued.inner_text()
    assert status(mall.url, f"/v1/agencies/{agency_id}/api-keys", deputy) == 200
    row = page.locator("#agency-keys tr", has_text="Kepala kantor")
    expect(row).to_contain_text("Aktif")
    row.locator("button.revoke").click()
    expect(page.locator("#agency-confirm")).to_contain_text("Cabut kunci Kepala kantor")
    page.click("#agency-confirm .confirm-revoke")
    expect(row).to_contain_text("Dicabut")
    assert status(mall.url, f"/v1/agencies/{agency_id}/api-keys", deputy) == 401
    assert status(mall.url, f"/v1/agencies/{agency_id}/api-keys", first_admin) == 200
    page.click("#key-secret button")
    expect(page.locator("#key-secret .secret-key")).to_have_count(0)

    # a pairing code for a board showing the whole mall's calls
    page.select_option("#pair-role", "display")
    page.select_option("#pair-scope", "mall")
    page.fill("#pair-label", "Papan lobi")
    page.click("#pair button[type=submit]")
    code = page.locator("#pairing-code-value")
    expect(code).to_have_text(re.compile(r"^\d{8}$"))
    expect(page.locator("#pair-code")).to_contain_text("WIB")
    board = requests.post(f"{mall.url}/v1/pairings", json={"code": code.inner_text()}, timeout=10)
    assert board.status_code == 201 and board.json()["scope"] == "mall", board.text

    # the mall_admin keys: the one in use marked; a warning before revoking it
    own = page.locator("#admin-keys tr", has_text="kunci perangkat ini")
    expect(own).to_have_count(1)
    page.fill("#admin-label", "Ibu Sari")
    page.click("#admin-issue button[type=submit]")
    expect(page.locator("#admin-secret .secret-key")).to_be_visible()
    sari = page.locator("#admin-secret .secret-key").inner_text()
    assert status(mall.url, "/v1/api-keys", sari) == 200
    page.click("#admin-secret button")
    own.locator("button.revoke").click()
    expect(page.locator("#admin-confirm")).to_contain_text("sedang dipakai perangkat ini")
    page.click("#admin-confirm button:not(.confirm-revoke)")  # no: the page stays signed in
    assert status(mall.url, "/v1/api-keys", MALL_ADMIN_KEY) == 200
    page.locator("#admin-keys tr", has_text="Ibu Sari").locator("button.revoke").click()
    expect(page.locator("#admin-confirm")).not_to_contain_text("sedang dipakai")
    page.click("#admin-confirm .confirm-revoke")
    expect(page.locator("#admin-keys tr", has_text="Ibu Sari")).to_contain_text("Dicabut")
    assert status(mall.url, "/v1/api-keys", sari) == 401
    expect(page.locator("main")).not_to_contain_text("null")
    page.evaluate("window.scrollTo(0, 0)")
    check(page, "mall")

    # English, then sign in with a second key and revoke it from its own page: the page locks
    page.click("#lang")
    expect(page.locator("#admin-keys-title")).to_have_text("Mall admin keys")
    page.fill("#admin-label", "Pak Budi")
    page.click("#admin-issue button[type=submit]")
    expect(page.locator("#admin-secret .secret-key")).to_be_visible()
    budi = page.locator("#admin-secret .secret-key").inner_text()
    page.click("#logout")
    page.fill("#mall-key", budi)
    page.click("#login-form button[type=submit]")
    expect(page.locator("#admin")).to_be_visible()
    mine = page.locator("#admin-keys tr", has_text="this device's key")
    expect(mine).to_contain_text("Pak Budi")
    mine.locator("button.revoke").click()
    expect(page.locator("#admin-confirm")).to_contain_text("the key this device is using")
    page.click("#admin-confirm .confirm-revoke")
    expect(page.locator("#login-form")).to_be_visible()
    assert page.evaluate("localStorage.getItem('mpp.mall.key')") is None
    assert status(mall.url, "/v1/api-keys", budi) == 401
    assert status(mall.url, "/v1/api-keys", MALL_ADMIN_KEY) == 200

    # a key revoked elsewhere: the page's next call answers 401, and it asks for a key again
    joko = requests.post(
        f"{mall.url}/v1/api-keys",
        headers=bearer(MALL_ADMIN_KEY),
        json={"label": "Joko"},
        timeout=10,
    ).json()
    page.fill("#mall-key", joko["key"])
    page.click("#login-form button[type=submit]")
    expect(page.locator("#admin")).to_be_visible()  # shown once its lists are loaded
    expect(page.locator("#admin-keys tr", has_text="Joko").locator(".own")).to_be_visible()
    gone = requests.delete(
        f"{mall.url}/v1/api-keys/{joko['id']}", headers=bearer(MALL_ADMIN_KEY), timeout=10
    )
    assert gone.status_code == 204
    page.locator("#agency-list [data-manage='PAJAK']").click()
    expect(page.locator("#login-form")).to_be_visible()
    expect(page.locator("#admin")).to_be_hidden()
