"""Booking check-in at the kiosk, in chromium against a real mall: the booking's code typed, or
the link of its QR read by the camera (BarcodeDetector, stubbed here with a camera that sees the
citizen's phone), gives the printed slip as for a walk-in; too early, unknown and already used
codes are answered in plain Bahasa; a check-in whose answer is lost is asked again and
replayed."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import requests
from playwright.sync_api import expect

from tests.web.conftest import KIOSK, Agency

pytestmark = pytest.mark.e2e

JAKARTA = ZoneInfo("Asia/Jakarta")
NIKS = ("3171010101900003", "3171010101900011", "3171010101900029")

# A camera and a BarcodeDetector for a headless kiosk: the stream is a canvas's, and the
# detector "sees" the QR whose text the test sets in window.__qr
CAMERA_STUB = """
(() => {
  window.__qr = null;
  window.__cameraStopped = false;
  class Detector {
    static async getSupportedFormats() { return ["qr_code"]; }
    async detect() { return window.__qr ? [{ rawValue: window.__qr, format: "qr_code" }] : []; }
  }
  window.BarcodeDetector = Detector;
  navigator.mediaDevices.getUserMedia = async () => {
    const canvas = document.createElement("canvas");
    canvas.width = 64; canvas.height = 48;
    canvas.getContext("2d").fillRect(0, 0, 64, 48);
    const stream = canvas.captureStream(5);
    for (const track of stream.getTracks()) {
      const stop = track.stop.bind(track);
      track.stop = () => { window.__cameraStopped = true; stop(); };
    }
    return stream;
  };
})();
"""


def bookable_service(agency: Agency) -> dict:
    """Open all day in 15-minute slots; check-in from the slot's start (no early window) until
    4 h after, so the slot under way is on time and tomorrow's is too early, whatever the hour."""
    return agency.post(
        f"/v1/agencies/{agency.id}/services",
        agency.admin,
        {
            "code": "PASPOR",
            "name": "Paspor baru",
            "fee_idr": 0,
            "sla_minutes": 60,
            "prefix": "P",
            "opening_hours": [{"opens": "00:00", "closes": "23:45"}],
            "booking": {"slot_minutes": 15, "capacity": 5, "early_minutes": 0, "late_minutes": 240},
        },
    )


def book(mall, service: dict, day: str, nik: str, *, latest_started: bool) -> dict:
    slots = requests.get(
        f"{mall.url}/v1/services/{service['id']}/slots", params={"date": day}, timeout=10
    ).json()["items"]
    now = datetime.now(JAKARTA)
    open_slots = [s for s in slots if s["bookable"] and s["remaining"]]
    if latest_started:
        slot = [s for s in open_slots if datetime.fromisoformat(s["start"]) <= now][-1]
    else:
        slot = open_slots[0]
    answer = requests.post(
        f"{mall.url}/v1/bookings",
        json={"service_id": service["id"], "slot_start": slot["start"], "nik": nik},
        timeout=10,
    )
    assert answer.status_code == 201, answer.text
    return answer.json()


def test_a_booked_citizen_checks_in_at_the_kiosk(mall_factory, new_page):
    mall = mall_factory("sqlite")
    agency = Agency(mall.url, code="IMIGRASI")
    service = bookable_service(agency)
    now = datetime.now(JAKARTA)
    today, tomorrow = now.date().isoformat(), (now + timedelta(days=1)).date().isoformat()
    typed = book(mall, service, today, NIKS[0], latest_started=True)
    scanned = book(mall, service, today, NIKS[1], latest_started=True)
    early = book(mall, service, tomorrow, NIKS[2], latest_started=False)

    kiosk = new_page(KIOSK)
    kiosk.context.add_init_script(CAMERA_STUB)
    keys = []

    def lose_the_first_answer(route):
        keys.append(route.request.headers.get("idempotency-key"))
        if len(keys) == 1:
            route.fetch()  # the booking is checked in; the kiosk never hears of it
            route.abort("connectionreset")
        else:
            route.continue_()

    kiosk.route(f"**/v1/bookings/{typed['id']}/check-in", lose_the_first_answer)
    kiosk.goto(f"{mall.url}/kiosk")
    kiosk.click("#check-in")
    expect(kiosk.locator("#booking-code")).to_be_focused()

    # an unknown code never reaches a ticket
    kiosk.fill("#booking-code", str(uuid.uuid4()))
    kiosk.keyboard.press("Enter")
    expect(kiosk.locator("#notice")).to_have_text(
        "Kode booking tidak dikenal. Periksa kembali kode pada halaman booking Anda."
    )
    # tomorrow's booking: too early, and it is kept
    kiosk.fill("#booking-code", early["id"])
    kiosk.keyboard.press("Enter")
    expect(kiosk.locator("#notice")).to_contain_text("Terlalu awal. Check-in dibuka pukul")
    expect(kiosk.locator("#notice")).to_contain_text("Booking Anda tetap berlaku")
    kept = requests.get(f"{mall.url}/v1/bookings/{early['id']}", timeout=10).json()
    assert kept["status"] == "booked"

    # typed (or typed by a USB scanner): the code, or the QR's whole link; its answer is lost
    # once and the kiosk asks again with the same key: the same ticket, not "already used"
    kiosk.fill("#booking-code", f"  {mall.url}/book?booking={typed['id']}  ")
    kiosk.keyboard.press("Enter")
    expect(kiosk.locator("#number")).to_have_text("P-001")
    assert len(keys) == 2 and keys[0] == keys[1]
    expect(kiosk.locator("#checkin-note")).to_contain_text("Check-in berhasil")
    expect(kiosk.locator("#slip .qr svg")).to_have_count(1)
    link = kiosk.locator("#ticket-link").get_attribute("href")
    ticket = requests.get(link.replace("/t/", "/v1/tickets/"), timeout=10).json()
    assert ticket["booking_id"] == typed["id"] and ticket["status"] == "waiting"

    # the same booking again, another visit to the screen: already used, said so
    kiosk.unroute(f"**/v1/bookings/{typed['id']}/check-in")
    kiosk.click("text=Selesai")
    kiosk.click("#check-in")
    kiosk.fill("#booking-code", typed["id"])
    kiosk.keyboard.press("Enter")
    expect(kiosk.locator("#notice")).to_contain_text("Booking ini sudah di-check-in")

    # the camera reads the QR of the booking page on the citizen's phone
    expect(kiosk.locator("#scan")).to_be_visible()
    kiosk.click("#scan")
    expect(kiosk.locator("#scanner")).to_be_visible()
    qr = f"{mall.url}/book?booking={scanned['id']}"
    kiosk.evaluate(f"window.__qr = {json.dumps(qr)}")
    expect(kiosk.locator("#number")).to_have_text("P-002")
    assert kiosk.evaluate("window.__cameraStopped") is True
    used = requests.get(f"{mall.url}/v1/bookings/{scanned['id']}", timeout=10).json()
    assert used["status"] == "checked_in"

    # English on request
    kiosk.click("#lang")
    expect(kiosk.locator("#checkin-note")).to_contain_text("Checked in. You will be called from")
