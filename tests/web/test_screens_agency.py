"""The agency dashboard in chromium against a real mall: after one citizen is served, pays and
rates two stars, the dashboard shows the day's served count, the IKM respondent, the complaint
with its deadline and the settlement, downloads the CSV, and passes axe."""

from __future__ import annotations

import pytest
import requests
from playwright.sync_api import expect

from tests.support.infra import wait_until
from tests.web.conftest import Agency, bearer
from tests.web.test_screens_accessibility import check

pytestmark = pytest.mark.e2e

DESK = {"width": 1366, "height": 768}


def test_the_dashboard_shows_a_served_paid_and_rated_citizen(mall_factory, new_page):
    mall = mall_factory("sqlite")
    agency = Agency(mall.url)
    ticket = agency.take()
    agency.call_next()
    agency.act(ticket["id"], "start")
    agency.act(ticket["id"], "complete")
    staff = bearer(agency.admin)
    payment = wait_until(
        lambda: (
            requests.get(f"{mall.url}/v1/tickets/{ticket['id']}/payment", headers=staff, timeout=10)
            .json()
            .get("id")
        )
    )
    agency.post(f"/v1/simulator/payments/{payment}/pay", agency.admin)
    token = agency.rating_token(ticket)
    agency.post(
        "/v1/ratings",
        None,
        {
            "token": token,
            "stars": 2,
            "answers": {f"U{i}": 2 for i in range(1, 10)},
            "comment": "Terlalu lama",
        },
    )

    page = new_page(DESK)
    page.goto(f"{mall.url}/agency?agency={agency.id}#key={agency.admin}")
    expect(page.locator("#kpi-served")).to_have_text("1")
    expect(page.locator("#by-service")).to_contain_text("Pajak STNK tahunan")
    expect(page.locator("#ikm-count")).to_have_text("1 responden")
    # nine answers of 2 on the 1-4 scale: IKM 50.00, grade D; one of one served is representative
    expect(page.locator("#ikm-value")).to_contain_text("50")
    expect(page.locator("#ikm-value")).to_contain_text("D")
    expect(page.locator("#ikm")).not_to_contain_text("belum representatif")
    expect(page.locator("#complaints")).to_contain_text("Terlalu lama")
    expect(page.locator("#complaints .due")).to_contain_text("WIB")
    expect(page.locator("#settle-gross")).to_have_text("Rp 125.000")
    expect(page.locator("main")).not_to_contain_text("null")
    with page.expect_download() as download:
        page.click("#csv")
    csv = download.value.path().read_text()
    assert "125000" in csv and ticket["number"] in csv, csv
    check(page, "agency")
