"""The officer's console in chromium against a real mall: the line in call order, keyboard
presses, the guard against holding two citizens, recall before no-show, a call out of order, a
transfer, and a press whose answer is lost retried without calling twice."""

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


def test_an_officer_serves_the_line_from_the_console(mall_factory, new_page):
    mall = mall_factory("sqlite")
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

    page.keyboard.press("r")
    expect(page.locator("#current")).to_contain_text("2 kali")
    expect(page.locator("#no-show")).to_be_enabled()
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
