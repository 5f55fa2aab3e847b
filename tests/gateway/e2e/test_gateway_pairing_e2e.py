"""Pairing a device through the gateway: an agency admin's 8-digit code is exchanged once for
the device's own key (of the agency, listed and revocable like any other); a used, wrong or
expired code answers 404; two devices presenting one code at once get one key between them."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from tests.support.mall import MALL_ADMIN_KEY

pytestmark = pytest.mark.e2e


def bearer(key: str) -> dict:
    return {"Authorization": f"Bearer {key}"}


def new_agency(url: str, code: str) -> dict:
    response = requests.post(
        f"{url}/v1/agencies",
        headers=bearer(MALL_ADMIN_KEY),
        json={"code": code, "name": code.title()},
        timeout=10,
    )
    assert response.status_code == 201, response.text
    return response.json()


def code_for(url: str, agency: dict, **body) -> requests.Response:
    return requests.post(
        f"{url}/v1/agencies/{agency['id']}/pairing-codes",
        headers=bearer(agency["admin_api_key"]["key"]),
        json=body,
        timeout=10,
    )


def redeem(url: str, code: str) -> requests.Response:
    return requests.post(f"{url}/v1/pairings", json={"code": code}, timeout=10)


def test_a_code_gives_one_device_its_own_key_once(shared_mall):
    url = shared_mall.url
    agency = new_agency(url, "PAIR-A")
    created = code_for(url, agency, role="display", label="Papan lobi")
    assert created.status_code == 201, created.text
    code = created.json()
    assert len(code["code"]) == 8 and code["code"].isdigit()
    assert code["role"] == "display" and code["scope"] == "agency"

    issued = redeem(url, code["code"])
    assert issued.status_code == 201, issued.text
    key = issued.json()
    assert key["role"] == "display" and key["agency_id"] == agency["id"]
    assert key["label"] == "Papan lobi"
    # the key works as the agency's display key, and the agency sees it among its keys
    board = requests.get(f"{url}/v1/display", headers=bearer(key["key"]), timeout=10)
    assert board.status_code == 200 and board.json()["agency_id"] == agency["id"]
    listed = requests.get(
        f"{url}/v1/agencies/{agency['id']}/api-keys",
        headers=bearer(agency["admin_api_key"]["key"]),
        timeout=10,
    ).json()["items"]
    assert key["id"] in [k["id"] for k in listed]

    again = redeem(url, code["code"])
    assert again.status_code == 404
    assert again.json()["error"]["code"] == "PAIRING_CODE_NOT_FOUND"
    wrong = redeem(url, f"{(int(code['code']) + 1) % 10**8:08d}")
    assert wrong.status_code == 404


def test_codes_are_for_device_roles_and_admins_of_the_agency(shared_mall):
    url = shared_mall.url
    agency = new_agency(url, "PAIR-B")
    other = new_agency(url, "PAIR-C")
    assert code_for(url, agency, role="agency_admin").status_code == 422
    assert code_for(url, agency, role="display", scope="mall").status_code == 403
    foreign = requests.post(
        f"{url}/v1/agencies/{agency['id']}/pairing-codes",
        headers=bearer(other["admin_api_key"]["key"]),
        json={"role": "officer"},
        timeout=10,
    )
    assert foreign.status_code == 403
    for bad in ("1234567", "123456789", "abcdefgh", "1234 678"):
        assert redeem(url, bad).status_code == 422, bad


def test_two_devices_presenting_one_code_get_one_key(shared_mall):
    url = shared_mall.url
    agency = new_agency(url, "PAIR-D")
    code = code_for(url, agency, role="officer").json()["code"]
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _: redeem(url, code), range(8)))
    statuses = sorted(a.status_code for a in answers)
    assert statuses == [201] + [404] * 7, [a.text for a in answers]


def test_an_expired_code_answers_404(mall_factory):
    mall = mall_factory("sqlite", {"PAIRING_CODE_TTL_SECONDS": "0"})
    agency = new_agency(mall.url, "PAIR-E")
    code = code_for(mall.url, agency, role="kiosk").json()
    assert redeem(mall.url, code["code"]).status_code == 404


def test_wrong_codes_from_one_address_are_limited_like_failed_keys(mall_factory):
    mall = mall_factory("sqlite", {"RATE_LIMIT_AUTH_FAILURES_PER_MINUTE": "3"})
    agency = new_agency(mall.url, "PAIR-F")
    code = code_for(mall.url, agency, role="display").json()["code"]
    wrong = f"{(int(code) + 1) % 10**8:08d}"
    assert [redeem(mall.url, wrong).status_code for _ in range(3)] == [404] * 3
    # past the limit, even the right code waits: guessing 10^8 codes takes years, not minutes
    limited = redeem(mall.url, code)
    assert limited.status_code == 429, limited.text
    assert int(limited.headers["Retry-After"]) >= 1
