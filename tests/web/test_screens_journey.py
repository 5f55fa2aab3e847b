"""The whole journey through the screens, in Debian's chromium against a real mall: the kiosk
issues a ticket, the board speaks its call once (and never again after a reload), the citizen's
phone shows the QRIS, the simulator pays, the phone shows the receipt and takes the rating."""

from __future__ import annotations

import re

import pytest
import requests
from playwright.sync_api import expect

from tests.support.infra import wait_until
from tests.web.conftest import KIOSK, PHONE, TV, Agency, bearer, wait_spoken

pytestmark = pytest.mark.e2e


def test_kiosk_board_phone_payment_and_rating(mall_factory, new_page):
    mall = mall_factory("sqlite")
    agency = Agency(mall.url)

    # the board, paired by its display key in the address's fragment, sound on
    board = new_page(TV, speech=True)
    board.goto(f"{mall.url}/board#key={agency.display}")
    expect(board).to_have_url(f"{mall.url}/board")  # the key left the address bar
    board.click("#sound")
    assert wait_spoken(board, 1) == ["Suara aktif"]
    board.evaluate("window.__spoken = []")

    # the kiosk: agency, service (fee and requirements shown), a priority, the ticket
    kiosk = new_page(KIOSK)
    kiosk.goto(f"{mall.url}/kiosk")
    kiosk.click(f"[data-agency='{agency.code}']")
    service_tile = kiosk.locator(f"[data-service='{agency.service['code']}']")
    expect(service_tile).to_contain_text("Rp 125.000")
    service_tile.click()
    expect(kiosk.locator(".requirements")).to_contain_text("STNK asli")
    kiosk.click("[data-priority='elderly']")
    kiosk.click("#take")
    expect(kiosk.locator("#number")).to_have_text("S-001")
    link = kiosk.locator("#ticket-link").get_attribute("href")
    assert re.fullmatch(rf"{mall.url}/t/[\w-]+\?code=[\w-]{{22}}", link), link
    assert kiosk.locator(".qr svg:visible").count() == 1  # the IKM page's QR hides meanwhile

    # the officer calls it: the board shows it and speaks it once, in Indonesian
    called = agency.call_next()
    assert called["number"] == "S-001" and called["priority"] == "elderly"
    expect(board.locator(".now [data-number='S-001']")).to_contain_text("Loket 3")
    said = wait_spoken(board, 1)
    assert said == ["Nomor antrean es, satu, silakan menuju loket tiga"], said

    # the citizen's phone, from the slip's QR: called, then served
    phone = new_page(PHONE)
    phone.goto(link)
    expect(phone.locator("#number")).to_have_text("S-001")
    expect(phone.locator("#status")).to_contain_text("Dipanggil")
    expect(phone.locator(".go")).to_contain_text("Loket 3")
    expect(phone.locator("main")).not_to_contain_text("null")
    # the invoice exists at once; until the provider has made its charge the page says so
    # (here the first answer is made to say "preparing", as during a provider's outage)
    preparing = []

    def still_preparing(route):
        if preparing:
            return route.fallback()
        answer = route.fetch()
        preparing.append(answer.json())
        route.fulfill(
            response=answer, json={**answer.json(), "charge_status": "preparing", "qris": None}
        )

    phone.route("**/payment?*", still_preparing)
    agency.act(called["id"], "start")
    agency.act(called["id"], "complete")
    expect(phone.locator("#status")).to_have_text("Selesai")
    expect(phone.locator("#pay-preparing")).to_contain_text("Menyiapkan pembayaran")

    # a reload never repeats it: the next call is the first thing the reloaded board says
    board.reload()
    expect(board.locator("#recent li").first).to_contain_text("S-001")
    agency.take()
    second = agency.call_next()
    assert second["number"] == "S-002"
    said = wait_spoken(board, 1)
    assert said == ["Nomor antrean es, dua, silakan menuju loket tiga"], said

    # once invoiced, the QRIS
    expect(phone.locator("#amount")).to_have_text("Rp 125.000")
    qris = phone.locator("#qris")
    expect(qris).to_be_visible()
    expect(phone.locator("#pay-preparing")).to_have_count(0)
    # visible (260 × 260 by its attributes) before its SVG is loaded: wait for the image itself
    wait_until(
        lambda: phone.evaluate("document.getElementById('qris')?.naturalWidth ?? 0") > 0,
        10,
        0.1,
        "the QRIS image loaded",
    )

    # the simulator pays (the agency admin's test double); the phone shows the receipt
    payment = requests.get(
        f"{mall.url}/v1/tickets/{called['id']}/payment", headers=bearer(agency.admin), timeout=10
    ).json()
    agency.post(f"/v1/simulator/payments/{payment['id']}/pay", agency.admin)
    expect(phone.locator("#pay-status")).to_have_text("Lunas", timeout=30_000)
    expect(phone.locator("#receipt")).to_contain_text("MPP-")
    expect(phone.locator("#qris")).to_have_count(0)

    # the rating: two stars offer a complaint; the nine SKM questions in the regulation's words
    form = phone.locator("#rate-form")
    expect(form).to_be_visible(timeout=30_000)
    form.locator("input[name=stars][value='2']").check()
    expect(phone.locator("#low")).to_be_visible()
    expect(form.locator("input[name=complaint]")).to_be_checked()
    form.locator("summary").click()
    expect(form.locator(".question")).to_have_count(9)
    expect(form).to_contain_text("kesesuaian persyaratan pelayanan dengan jenis pelayanannya")
    for element in range(1, 10):
        form.locator(f"input[name=U{element}][value='3']").check()
    form.locator("textarea[name=comment]").fill("Antrean lama, petugas ramah")
    form.locator("button[type=submit]").click()
    expect(phone.locator("#thanks")).to_contain_text("Terima kasih")

    # the verdict counts: the agency's IKM has one respondent, and a complaint to answer
    summary = requests.get(
        f"{mall.url}/v1/ratings/summary", params={"agency": agency.id}, timeout=10
    ).json()
    assert summary["count"] == 1 and summary["average_stars"] == "2.00", summary
    complaints = requests.get(
        f"{mall.url}/v1/agencies/{agency.id}/complaints", headers=bearer(agency.admin), timeout=10
    ).json()["items"]
    assert [c["comment"] for c in complaints] == ["Antrean lama, petugas ramah"]

    # what the phone was sent: gzip, under the page's strict policy
    script = requests.get(f"{mall.url}/web/ticket.js", timeout=10)
    assert script.headers["Content-Encoding"] == "gzip"
    assert "script-src 'self'" in script.headers["Content-Security-Policy"]
    assert script.headers["X-Content-Type-Options"] == "nosniff"
