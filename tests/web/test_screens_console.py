"""The officer's console in chromium against a real mall: the line in call order, keyboard
presses, the guard against holding two citizens, recall before no-show (as many calls as the
queue demands), a call out of order, a transfer, a press whose answer is lost retried without
calling twice, and the officer opening and closing their own counter."""

from __future__ import annotations

import pytest
import requests
from playwright.sync_api import expect

from tests.web.conftest import Agency, bearer

pytestmark = pytest.mark.e2e

DESK = {"width": 1366, "height": 768}


def line_numbers(page) -> list[str]:
    return page.locator("#line li[data-number]").evaluate_all(
        "items => items.map(i => i.dataset.number)"
    )


def test_an_officer_serves_the_line_from_the_console(module_mall, new_page):
    mall = module_mall  # shared by the module: the agencies below are this test's own
    agency = Agency(mall.url)
    other = Agency(mall.url, code="DUKCAPIL", fee_idr=0)
    first = agency.take()
    agency.take()
    elderly = agency.post(
        "/v1/tickets", None, {"service_id": agency.service["id"], "priority": "elderly"}
    )

    page = new_page(DESK)
    calls = []

    def lose_the_first_answer(route):
        calls.append(route.request.headers.get("idempotency-key"))
        if len(calls) == 1:
            route.fetch()  # the queue calls someone; the console never hears of it
            route.abort("connectionreset")
        else:
            route.continue_()

    page.route("**/call-next", lose_the_first_answer)
    page.goto(f"{mall.url}/counter?counter={agency.counter['id']}#key={agency.officer}")
    expect(page.locator("#counter-name")).to_have_text("Loket 3")
    expect(page.locator("#line-title")).to_contain_text("3 menunggu")
    # the line in the order call-next takes it: priority first, then the longest waiting
    assert line_numbers(page) == ["S-003", "S-001", "S-002"]

    page.keyboard.press("n")  # call next; its answer is lost and the press retried
    expect(page.locator("#current-number")).to_have_text(elderly["number"])
    assert len(calls) == 2 and calls[0] == calls[1]
    assert line_numbers(page) == ["S-001", "S-002"]  # one call, not two
    expect(page.locator("#next")).to_be_disabled()  # never two citizens at once
    expect(page.locator("main")).not_to_contain_text("null")  # no conditional left as text
    expect(page.locator("#clock")).to_contain_text("WIB")
    expect(page.locator("#no-show")).to_be_disabled()  # not before a recall

    expect(page.locator("#recall")).to_be_enabled()
    page.keyboard.press("r")
    expect(page.locator("#current")).to_contain_text("2 kali")
    expect(page.locator("#no-show")).to_be_disabled()  # the queue wants 3 calls (its setting)
    page.keyboard.press("s")
    expect(page.locator("#current-status")).to_have_text("Sedang dilayani")
    page.keyboard.press("c")
    expect(page.locator("#current")).to_contain_text("Tidak ada tiket")
    expect(page.locator("#next")).to_be_enabled()

    # out of order: the officer calls S-002 from the line, then sends it to another agency
    page.locator("#line li[data-number='S-002'] button").click()
    expect(page.locator("#current-number")).to_have_text("S-002")
    page.select_option("#transfer-to", other.service["id"])
    page.locator("#transfer button[type=submit]").click()
    expect(page.locator("#current")).to_contain_text("Tidak ada tiket")
    assert line_numbers(page) == ["S-001"]

    done = requests.get(
        f"{mall.url}/v1/tickets/{elderly['id']}", headers=bearer(agency.officer), timeout=10
    ).json()
    assert done["status"] == "done" and done["call_count"] == 2
    waiting = requests.get(
        f"{mall.url}/v1/tickets/{first['id']}", headers=bearer(agency.officer), timeout=10
    ).json()
    assert waiting["status"] == "waiting"


def test_an_officer_closes_the_counter_only_once_the_citizen_is_dealt_with(module_mall, new_page):
    mall = module_mall  # shared by the module: the agencies below are this test's own
    agency = Agency(mall.url, code="BAPENDA")
    absent = agency.take()
    page = new_page(DESK)
    page.goto(f"{mall.url}/counter?counter={agency.counter['id']}#key={agency.officer}")
    expect(page.locator("#counter-state")).to_have_text("Loket buka")
    page.keyboard.press("n")
    expect(page.locator("#current-number")).to_have_text(absent["number"])

    # closing on a citizen at the desk is refused, in words the officer can act on
    page.locator("#open-close").click()
    expect(page.locator("#notice")).to_contain_text("Loket masih menangani warga")
    expect(page.locator("#counter-state")).to_have_text("Loket buka")

    # the no-show button waits for the queue's minimum: the first call and two recalls
    for count in (2, 3):
        expect(page.locator("#no-show")).to_be_disabled()
        # a key is taken only while its button is enabled (not during another press)
        expect(page.locator("#recall")).to_be_enabled()
        page.keyboard.press("r")
        expect(page.locator("#current")).to_contain_text(f"{count} kali")
    expect(page.locator("#no-show")).to_be_enabled()
    page.keyboard.press("x")
    expect(page.locator("#current")).to_contain_text("Tidak ada tiket")

    page.locator("#open-close").click()
    expect(page.locator("#counter-state")).to_have_text("Loket tutup")
    expect(page.locator("#open-close")).to_have_text("Buka loket")
    expect(page.locator("#notice")).to_contain_text("Loket ini tutup")
    agency.take()
    expect(page.locator("#line-title")).to_contain_text("1 menunggu")
    expect(page.locator("#next")).to_be_disabled()  # a closed counter does not call
    line = requests.get(
        f"{mall.url}/v1/counters/{agency.counter['id']}/line",
        headers=bearer(agency.officer),
        timeout=10,
    ).json()
    assert line["counter"]["is_open"] is False

    page.locator("#open-close").click()
    expect(page.locator("#counter-state")).to_have_text("Loket buka")
    expect(page.locator("#notice")).to_be_hidden()
    expect(page.locator("#next")).to_be_enabled()
    gone = requests.get(
        f"{mall.url}/v1/tickets/{absent['id']}", headers=bearer(agency.officer), timeout=10
    ).json()
    assert gone["status"] == "no_show" and gone["call_count"] == 3
