"""The citizen gives up their place from their phone: two taps on the ticket page, the ticket is
cancelled and the one behind moves up; nobody without the ticket's code can do it, and a ticket
already called cannot be given up."""

from __future__ import annotations

import pytest
import requests
from playwright.sync_api import expect

from tests.web.conftest import PHONE, Agency

pytestmark = pytest.mark.e2e


def test_a_citizen_gives_up_a_waiting_ticket_from_the_phone(mall_factory, new_page):
    mall = mall_factory("sqlite")
    agency = Agency(mall.url)
    mine = agency.take()
    behind = agency.take()
    assert behind["position"] == 2
    url = f"{mall.url}/v1/tickets/{mine['id']}"

    # without the code: nothing to cancel, nothing learnt
    assert requests.delete(url, timeout=10).status_code == 404
    assert requests.delete(url, params={"code": "A" * 22}, timeout=10).status_code == 404

    phone = new_page(PHONE)
    phone.goto(f"{mall.url}/t/{mine['id']}?code={mine['access_code']}")
    expect(phone.locator("#position")).to_have_text("1")
    phone.click("#cancel")
    expect(phone.locator("#status")).to_have_text("Menunggu")  # one tap asks again
    phone.click("#cancel")
    expect(phone.locator("#status")).to_have_text("Dibatalkan")
    expect(phone.locator("#cancel")).to_have_count(0)

    again = requests.delete(url, params={"code": mine["access_code"]}, timeout=10)
    assert again.status_code == 409 and again.json()["error"]["code"] == "TICKET_NOT_WAITING"
    moved = requests.get(
        f"{mall.url}/v1/tickets/{behind['id']}", params={"code": behind["access_code"]}, timeout=10
    ).json()
    assert moved["position"] == 1
    # a called ticket is the officer's to end, not the citizen's
    called = agency.call_next()
    assert called["number"] == behind["number"]
    late = requests.delete(
        f"{mall.url}/v1/tickets/{behind['id']}", params={"code": behind["access_code"]}, timeout=10
    )
    assert late.status_code == 409
