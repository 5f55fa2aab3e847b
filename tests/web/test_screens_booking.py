"""Booking from a phone, in chromium against a real mall: service → tomorrow → a slot → the NIK
(typed hidden, shown back only masked) → the booking's code and QR; reopened from its link and
cancelled, the slot's place comes back."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import requests
from playwright.sync_api import expect

from tests.web.conftest import PHONE, Agency

pytestmark = pytest.mark.e2e

NIK = "3171010101900003"


def test_a_citizen_books_a_slot_and_cancels_it(mall_factory, new_page):
    mall = mall_factory("sqlite")
    agency = Agency(mall.url, code="IMIGRASI")
    service = agency.post(
        f"/v1/agencies/{agency.id}/services",
        agency.admin,
        {
            "code": "PASPOR",
            "name": "Paspor baru",
            "fee_idr": 0,
            "sla_minutes": 60,
            "prefix": "P",
            "opening_hours": [{"opens": "08:00", "closes": "10:00"}],
            "booking": {"slot_minutes": 60, "capacity": 2},
        },
    )
    tomorrow = (datetime.now(ZoneInfo("Asia/Jakarta")) + timedelta(days=1)).date().isoformat()

    phone = new_page(PHONE)
    phone.goto(f"{mall.url}/book")
    phone.click("[data-service='PASPOR']")
    phone.click(f"[data-day='{tomorrow}']")
    first_slot = phone.locator("[data-slot]").first
    expect(first_slot).to_contain_text("08.00 WIB")
    expect(first_slot).to_contain_text("2 tempat")
    first_slot.click()
    expect(phone.locator("#nik")).to_have_attribute("type", "password")
    phone.fill("#nik", NIK)
    phone.click("#book-form button[type=submit]")
    expect(phone.locator("#nik-masked")).to_have_text("************0003")
    assert NIK not in phone.content()  # never shown whole, not even in the page's markup
    reference = phone.locator("#reference").text_content()
    expect(phone).to_have_url(f"{mall.url}/book?booking={reference}")
    assert phone.locator(".qr svg").count() == 1

    slots = requests.get(
        f"{mall.url}/v1/services/{service['id']}/slots", params={"date": tomorrow}, timeout=10
    ).json()["items"]
    assert slots[0]["remaining"] == 1

    # the link from the QR, later: the booking, then cancelled
    phone.reload()
    expect(phone.locator("#booking-status")).to_have_text("Terjadwal")
    phone.click("#cancel-booking")
    expect(phone.locator("#booking-status")).to_have_text("Dibatalkan")
    slots = requests.get(
        f"{mall.url}/v1/services/{service['id']}/slots", params={"date": tomorrow}, timeout=10
    ).json()["items"]
    assert slots[0]["remaining"] == 2
