"""The public IKM page in chromium against a real mall: citizens served and rated through the
API; the page ranks the agencies whose sample is representative by their published IKM, shows
each one's grade in words and its nine elements, keeps an agency with too few respondents apart
(even with a higher score), speaks English on request and reads another month."""

from __future__ import annotations

import pytest
import requests
from playwright.sync_api import expect

from tests.support.infra import wait_until
from tests.web.conftest import KIOSK, PHONE, TV, Agency
from tests.web.test_screens_accessibility import check

pytestmark = pytest.mark.e2e

DESK = {"width": 1366, "height": 768}


def serve(agency: Agency) -> dict:
    """One citizen takes a ticket of the agency's free service and is served to the end."""
    ticket = agency.take()
    called = agency.call_next()
    assert called["id"] == ticket["id"], called
    agency.act(ticket["id"], "start")
    agency.act(ticket["id"], "complete")
    return ticket


def rate(agency: Agency, ticket: dict, answer: int) -> None:
    """The citizen rates with the token the ticket page gives (every element ``answer``)."""
    token = agency.rating_token(ticket)
    agency.post(
        "/v1/ratings",
        None,
        {"token": token, "stars": 5, "answers": {f"U{i}": answer for i in range(1, 10)}},
    )


def rated_mall(url: str) -> tuple[Agency, Agency, Agency]:
    """Three agencies this month: SAMSAT 1 of 1 served rated all 4 (100,00 A), DUKCAPIL 1 of 1
    rated all 3 (75,00 C), IMIGRASI 1 of 2 rated all 4: K&M needs 2 of 2, not representative."""
    best, fair, few = (Agency(url, code=c, fee_idr=0) for c in ("SAMSAT", "DUKCAPIL", "IMIGRASI"))
    rate(best, serve(best), 4)
    rate(fair, serve(fair), 3)
    rate(few, serve(few), 4)
    serve(few)

    def folded() -> bool:
        items = requests.get(f"{url}/v1/leaderboard", timeout=10).json()["items"]
        return len(items) == 3 and sum(i["respondents"] for i in items) == 3

    wait_until(folded, 30, 0.2, "three agencies on the leaderboard")
    return best, fair, few


def test_the_ikm_page_ranks_representative_agencies_and_keeps_the_others_apart(
    mall_factory, new_page
):
    mall = mall_factory("sqlite")
    best, fair, few = rated_mall(mall.url)

    served = requests.get(f"{mall.url}/ikm", timeout=10)  # as the other screens are served
    assert "script-src 'self'" in served.headers["Content-Security-Policy"], served.headers
    assert served.headers["Cache-Control"] == "no-cache"
    assert served.headers["Referrer-Policy"] == "no-referrer"

    page = new_page(PHONE)
    page.goto(f"{mall.url}/ikm")
    ranked = page.locator("#ranked > li")
    expect(ranked).to_have_count(2)
    expect(ranked.nth(0)).to_have_attribute("data-agency", best.id)
    expect(ranked.nth(1)).to_have_attribute("data-agency", fair.id)
    expect(ranked.nth(0).locator(".score")).to_have_text("100,00")
    expect(ranked.nth(0)).to_contain_text("A · Sangat Baik")
    expect(ranked.nth(0).locator(".rank")).to_contain_text("1")
    expect(ranked.nth(1).locator(".score")).to_have_text("75,00")
    expect(ranked.nth(1)).to_contain_text("C · Kurang Baik")
    expect(ranked.nth(1)).to_contain_text("1 responden")

    # a higher score on too few respondents is listed apart, without a rank
    apart = page.locator(f"#unranked > li[data-agency='{few.id}']")
    expect(apart.locator(".score")).to_have_text("100,00")
    expect(apart).to_contain_text("1 dari 2 responden yang dibutuhkan")
    expect(apart.locator(".rank")).to_have_count(0)

    # the nine elements of an agency, in id-ID figures
    ranked.nth(1).locator("details summary").click()
    expect(ranked.nth(1).locator("[data-element]")).to_have_count(9)
    expect(ranked.nth(1).locator("[data-element='U3']")).to_contain_text("Waktu penyelesaian")
    expect(ranked.nth(1).locator("[data-element='U3'] td").first).to_have_text("75,00")
    # the whole mall: three respondents, (100 + 75 + 100) / 3 = 91,67 ...
    expect(page.locator("#mall-value")).to_have_text("91,67")
    # ... on 3 of the 4 citizens served: Krejcie & Morgan wants all 4
    expect(page.locator("#mall-respondents")).to_have_text("3 dari 4 responden yang dibutuhkan")
    expect(page.locator("#updated")).to_contain_text("WIB")
    expect(page.locator("main")).not_to_contain_text("null")
    page.evaluate("window.scrollTo(0, 0)")
    check(page, "ikm-phone")

    page.click("#lang")
    expect(ranked.nth(0)).to_contain_text("A · Very good")
    expect(page.locator("#ranked-title")).to_have_text("Agency ranking")
    page.click("#lang")

    # last month: nobody was rated, nobody ranked; every agency still listed
    options = page.locator("#period option")
    expect(options).to_have_count(12)
    page.select_option("#period", options.nth(1).get_attribute("value"))
    expect(page.locator("#ranked")).to_contain_text("Belum ada instansi")
    expect(page.locator("#unranked > li")).to_have_count(3)
    expect(page.locator("#unranked")).to_contain_text("Belum ada penilaian")
    assert "period=" in page.url

    # a desk: two columns of agencies, the same order
    desk = new_page(DESK)
    desk.goto(f"{mall.url}/ikm")
    expect(desk.locator("#ranked > li").first).to_have_attribute("data-agency", best.id)
    expect(desk.locator("#unranked > li")).to_have_count(1)
    check(desk, "ikm-desktop")

    # the board (citizens cannot tap it) and the kiosk (it stays on its page) show the QR
    for path, size in (("board", TV), ("kiosk", KIOSK)):
        screen = new_page(size)
        screen.goto(f"{mall.url}/{path}")
        expect(screen.locator("#ikm-qr .link")).to_have_text(f"{mall.url}/ikm")
        expect(screen.locator("#ikm-qr [role=img] svg")).to_be_visible()
    screen.click("#lang")
    expect(screen.locator("#ikm-qr")).to_contain_text("Scan to see")
    # a slip's QR is the citizen's own: the kiosk never shows two at once
    screen.click(f"[data-agency='{best.code}']")
    screen.click(f"[data-service='{best.service['code']}']")
    screen.click("#take")
    expect(screen.locator("#number")).to_be_visible()
    expect(screen.locator("#ikm-qr")).to_be_hidden()
