"""A board is paired, not typed into: opened without a key it asks for the code an agency admin
created; a wrong code is refused on the screen; the right one gives the board its own key, kept
across reloads."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.web.conftest import TV, Agency

pytestmark = pytest.mark.e2e


def test_a_board_pairs_with_a_code_and_keeps_its_key(mall_factory, new_page):
    mall = mall_factory("sqlite")
    agency = Agency(mall.url)
    code = agency.post(
        f"/v1/agencies/{agency.id}/pairing-codes", agency.admin, {"role": "display"}
    )["code"]

    board = new_page(TV, speech=True)
    board.goto(f"{mall.url}/board")
    expect(board.locator("#pairing")).to_be_visible()
    board.fill("#pairing-code", f"{(int(code) + 1) % 10**8:08d}")
    board.click("#pairing button[type=submit]")
    expect(board.locator(".pairing-error")).to_contain_text("Kode salah")

    board.fill("#pairing-code", code)
    board.click("#pairing button[type=submit]")
    expect(board.locator("#pairing")).to_have_count(0)
    key = board.evaluate("localStorage.getItem('mpp.board.key')")
    assert key and key.startswith("mpp_")

    agency.take()
    agency.call_next()
    expect(board.locator(".now [data-number='S-001']")).to_be_visible()
    board.reload()
    expect(board.locator(".now [data-number='S-001']")).to_be_visible()
    expect(board.locator("#pairing")).to_have_count(0)
