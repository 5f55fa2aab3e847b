"""The screens when the network or the gateway stumbles: a kiosk's retried tap issues no second
ticket; a board keeps announcing across a gateway restart, missing no call and repeating none."""

from __future__ import annotations

import pytest
import requests
from playwright.sync_api import expect

from tests.web.conftest import KIOSK, TV, Agency, wait_spoken

pytestmark = pytest.mark.e2e


def test_a_retried_kiosk_tap_after_a_lost_answer_issues_one_ticket(mall_factory, new_page):
    mall = mall_factory("sqlite")
    agency = Agency(mall.url)
    kiosk = new_page(KIOSK)
    seen_keys = []

    def lose_the_first_answer(route):
        seen_keys.append(route.request.headers.get("idempotency-key"))
        if len(seen_keys) == 1:
            route.fetch()  # the gateway issues the ticket; its answer never reaches the kiosk
            route.abort("connectionreset")
        else:
            route.continue_()

    kiosk.route("**/v1/tickets", lose_the_first_answer)
    kiosk.goto(f"{mall.url}/kiosk")
    kiosk.click(f"[data-agency='{agency.code}']")
    kiosk.click(f"[data-service='{agency.service['code']}']")
    kiosk.click("#take")
    expect(kiosk.locator("#notice")).to_be_visible()  # the tap failed, as far as anyone can see
    kiosk.click("#take")  # the citizen taps again
    expect(kiosk.locator("#number")).to_have_text("S-001")
    assert len(seen_keys) == 2 and seen_keys[0] == seen_keys[1] and seen_keys[0]
    # one ticket was issued: the next citizen's is S-002
    assert agency.take()["number"] == "S-002"


def test_the_board_speaks_every_call_once_across_a_gateway_restart(mall_factory, new_page):
    mall = mall_factory("sqlite")
    agency = Agency(mall.url)
    board_gateway = next(p for p in mall.processes if p.name == "gateway")
    # a second replica: officers keep calling through it while the board's gateway is down
    other = mall.start_service("gateway")
    other.wait_healthy()
    agency.url = f"http://127.0.0.1:{other.port}"

    board = new_page(TV, speech=True)
    board.goto(f"{mall.url}/board#key={agency.display}")
    board.click("#sound")
    assert wait_spoken(board, 1) == ["Suara aktif"]
    board.evaluate("window.__spoken = []")
    expect(board.locator("#stale")).to_be_hidden()

    for _ in range(3):
        agency.take()
    agency.call_next()  # S-001, live
    wait_spoken(board, 1)

    board_gateway.stop()
    expect(board.locator("#stale")).to_be_visible()
    first = agency.call_next()  # S-002 is called while the board's gateway is down
    agency.act(first["id"], "start")
    board_gateway.start()
    board_gateway.wait_healthy()
    expect(board.locator("#stale")).to_be_hidden(timeout=30_000)
    wait_spoken(board, 2)  # the missed call, from the snapshot
    agency.call_next()  # S-003, live again
    said = wait_spoken(board, 3)
    assert said == [
        "Nomor antrean es, satu, silakan menuju loket tiga",
        "Nomor antrean es, dua, silakan menuju loket tiga",
        "Nomor antrean es, tiga, silakan menuju loket tiga",
    ], said
    assert all(u["lang"] == "id-ID" for u in board.evaluate("window.__spoken"))
    assert requests.get(f"{mall.url}/readyz", timeout=10).ok
