"""The agency dashboard's work, in chromium against a real mall: answering a complaint (its
status, deadline with date in the mall's zone, the answers given)."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import requests
from playwright.sync_api import expect

from tests.support.infra import wait_until
from tests.web.conftest import Agency, bearer
from tests.web.test_screens_accessibility import check

pytestmark = pytest.mark.e2e

DESK = {"width": 1366, "height": 768}


def complaint_from_a_citizen(mall, agency: Agency, comment: str) -> None:
    """A free service's citizen is served and rates it two stars: a complaint of the agency."""
    ticket = agency.take()
    agency.call_next()
    agency.act(ticket["id"], "start")
    agency.act(ticket["id"], "complete")
    token = agency.rating_token(ticket)
    agency.post(
        "/v1/ratings",
        None,
        {
            "token": token,
            "stars": 2,
            "answers": {f"U{i}": 2 for i in range(1, 10)},
            "comment": comment,
        },
    )


def complaints(mall, agency: Agency) -> list[dict]:
    return requests.get(
        f"{mall.url}/v1/agencies/{agency.id}/complaints",
        headers=bearer(agency.admin),
        timeout=10,
    ).json()["items"]


def test_an_agency_admin_answers_and_resolves_a_complaint(module_mall, new_page):
    mall = module_mall  # shared by the module: the agencies below are this test's own
    agency = Agency(mall.url, code="DUKCAPIL", fee_idr=0)
    complaint_from_a_citizen(mall, agency, "Petugas tidak ramah")
    wait_until(lambda: complaints(mall, agency), 30, message="the complaint")

    page = new_page(DESK)
    page.goto(f"{mall.url}/agency?agency={agency.id}#key={agency.admin}")
    item = page.locator("#complaints > li").first
    expect(item).to_contain_text("Petugas tidak ramah")
    expect(item.locator(".state").first).to_have_text("Belum dijawab")
    # the deadline with its date and the mall's zone, e.g. "Jawab paling lambat Sen, 7 Des 2026 …"
    expect(item.locator(".due")).to_contain_text("Jawab paling lambat")
    year = str(datetime.now(ZoneInfo("Asia/Jakarta")).year)
    expect(item.locator(".due")).to_contain_text(year)
    expect(item.locator(".due")).to_contain_text("WIB")

    item.locator("summary").click()
    item.locator("textarea").fill("Mohon maaf, petugas sudah kami tegur.")
    item.locator("button[type=submit]").click()
    expect(page.locator("#notice")).to_have_text("Tanggapan terkirim.")
    expect(item.locator(".state").first).to_have_text("Sudah dijawab")
    expect(item.locator(".responses")).to_contain_text("Mohon maaf, petugas sudah kami tegur.")
    expect(item.locator(".due")).to_contain_text("Selesaikan paling lambat")
    check(page, "agency-complaint")

    item.locator("summary").click()
    item.locator("textarea").fill("Sudah diselesaikan dengan warga.")
    item.locator("input[name=resolve]").check()
    item.locator("button[type=submit]").click()
    expect(item.locator(".state").first).to_have_text("Selesai")
    expect(item.locator(".responses li")).to_have_count(2)
    expect(item.locator("form")).to_have_count(0)  # nothing left to answer
    page.click("#lang")
    expect(item.locator(".state").first).to_have_text("Resolved")

    stored = complaints(mall, agency)[0]
    assert stored["status"] == "resolved" and len(stored["responses"]) == 2
    assert stored["responses"][1]["resolves"] is True


def test_the_dashboard_charts_the_day_hour_by_hour(module_mall, new_page):
    mall = module_mall  # shared by the module: the agencies below are this test's own
    agency = Agency(mall.url)
    first = agency.take()
    agency.take()
    agency.call_next()
    agency.act(first["id"], "start")
    agency.act(first["id"], "complete")
    served = requests.get(
        f"{mall.url}/v1/tickets/{first['id']}", headers=bearer(agency.admin), timeout=10
    ).json()
    jakarta = ZoneInfo("Asia/Jakarta")
    taken_hour = datetime.fromisoformat(first["issued_at"]).astimezone(jakarta).hour
    served_hour = datetime.fromisoformat(served["completed_at"]).astimezone(jakarta).hour

    page = new_page(DESK)
    page.goto(f"{mall.url}/agency?agency={agency.id}#key={agency.admin}")
    expect(page.locator("#hourly-svg")).to_be_visible()
    expect(page.locator("#hourly-svg title").first).to_contain_text("per jam")
    page.locator("#hourly summary").click()
    taken_row = page.locator(f"#hourly-table tr[data-hour='{taken_hour}']")
    expect(taken_row.locator("td").nth(0)).to_have_text("2")
    expect(page.locator(f"#hourly-table tr[data-hour='{served_hour}'] td").nth(1)).to_have_text("1")
    expect(page.locator("#hourly-svg rect.taken")).to_have_count(
        page.locator("#hourly-table tbody tr").count()
    )
    check(page, "agency-hourly")

    # another day, chosen in the date field: an empty day, and the table stays open
    yesterday = (datetime.now(jakarta) - timedelta(days=1)).date().isoformat()
    page.fill("#hourly-date", yesterday)
    expect(page.locator("#hourly-svg title").first).to_contain_text(str(int(yesterday[8:10])))
    expect(page.locator("#hourly-table")).to_be_visible()
    # an empty day shows the usual opening hours, 07:00-17:00, all at zero
    expect(page.locator("#hourly-table tbody tr")).to_have_count(11)
    expect(page.locator("#hourly-table tr[data-hour='9'] td").nth(0)).to_have_text("0")
    page.click("#lang")
    expect(page.locator("#hourly summary")).to_have_text("Table by hour")


def test_an_agency_admin_manages_services_counters_and_keys(module_mall, new_page):
    mall = module_mall  # shared by the module: the agencies below are this test's own
    agency = Agency(mall.url, code="BAPENDA")
    page = new_page(DESK)
    page.goto(f"{mall.url}/agency?agency={agency.id}#key={agency.admin}")
    expect(page.locator("#service-list [data-service='BAPENDA-1']")).to_contain_text("Rp 125.000")

    # plug in a service
    page.locator("#manage-services details.add summary").click()
    page.fill("#new-code", "BAPENDA-1")  # taken: refused in words, then corrected
    page.fill("#new-name", "Balik nama kendaraan")
    page.fill("#new-prefix", "b")
    page.fill("#new-fee", "50000")
    page.fill("#new-sla", "45")
    page.fill("#new-hours", "08:00-12:00, 13.00-15.00")
    page.fill("#new-requirements", "KTP-el\nBPKB asli")
    page.locator("#add-service button[type=submit]").click()
    expect(page.locator("#notice")).to_have_text("Kode layanan itu sudah dipakai.")
    page.fill("#new-code", "BBN-1")
    page.locator("#add-service button[type=submit]").click()
    added = page.locator("#service-list [data-service='BBN-1']")
    expect(added).to_contain_text("Rp 50.000")
    expect(added).to_contain_text("08:00-12:00, 13:00-15:00")
    catalogue = requests.get(f"{mall.url}/v1/services", params={"agency": agency.id}).json()
    bbn = next(s for s in catalogue["items"] if s["code"] == "BBN-1")
    assert bbn["prefix"] == "B" and bbn["requirements"] == ["KTP-el", "BPKB asli"]

    # change its fee and requirements; hours that cannot be read are refused in words
    added.locator("summary").click()
    added.locator("input[name=fee_idr]").fill("75000")
    added.locator("input[name=hours]").fill("pagi saja")
    added.locator("form button[type=submit]").click()
    expect(page.locator("#notice")).to_contain_text("Jam layanan tidak dapat dibaca")
    added.locator("input[name=hours]").fill("08:00-12:00")
    added.locator("textarea[name=requirements]").fill("KTP-el")
    added.locator("form button[type=submit]").click()
    expect(page.locator("#notice")).to_have_text("Balik nama kendaraan disimpan.")
    expect(added).to_contain_text("Rp 75.000")

    # a counter for it, closed and opened
    page.locator("#manage-counters details.add summary").click()
    page.fill("#counter-name", "Loket 7")
    page.locator("#add-counter label", has_text="Balik nama kendaraan").click()
    page.locator("#add-counter button[type=submit]").click()
    counter = page.locator("#counter-list [data-counter='Loket 7']")
    expect(counter).to_contain_text("Loket buka")
    expect(counter).to_contain_text("Balik nama kendaraan")
    counter.locator("[data-toggle-counter]").click()
    expect(counter).to_contain_text("Loket tutup")
    counters = requests.get(
        f"{mall.url}/v1/agencies/{agency.id}/counters", headers=bearer(agency.admin), timeout=10
    ).json()["items"]
    assert next(c for c in counters if c["name"] == "Loket 7")["is_open"] is False

    # an officer's key: the secret once, and it works until revoked
    page.select_option("#key-role", "officer")
    page.fill("#key-label", "Loket 7 pagi")
    page.locator("#issue-key button[type=submit]").click()
    expect(page.locator("#issued")).to_contain_text("hanya ditampilkan sekali")
    secret = page.locator("#issued-secret").text_content()
    line = f"{mall.url}/v1/counters/{agency.counter['id']}/line"
    assert requests.get(line, headers=bearer(secret), timeout=10).status_code == 200
    row = page.locator("#key-list tr", has_text="Loket 7 pagi")
    expect(row).to_contain_text("Aktif")
    assert secret not in page.locator("#key-list").inner_text()  # listed, never its secret

    # a pairing code for a kiosk
    page.select_option("#pair-role", "kiosk")
    page.locator("#pairing-code-form button[type=submit]").click()
    expect(page.locator("#issued-code")).to_have_text(re.compile(r"^\d{8}$"))
    code = page.locator("#issued-code").text_content()
    paired = requests.post(f"{mall.url}/v1/pairings", json={"code": code}, timeout=10)
    assert paired.status_code == 201 and paired.json()["role"] == "kiosk"
    check(page, "agency-manage")

    row.locator("button").click()
    expect(row).to_contain_text("Dicabut")
    wait_until(
        lambda: requests.get(line, headers=bearer(secret), timeout=10).status_code == 401,
        30,
        message="the revoked key refused",
    )

    # unplug: two steps, then gone from the catalogue
    added.locator("summary").click()
    added.locator(".unplug button.danger").first.click()
    added.locator("[data-confirm-unplug]").click()
    expect(page.locator("#notice")).to_contain_text("dicabut")
    expect(page.locator("#service-list [data-service='BBN-1']")).to_have_count(0)
    catalogue = requests.get(f"{mall.url}/v1/services", params={"agency": agency.id}).json()
    assert [s["code"] for s in catalogue["items"]] == ["BAPENDA-1"]
