"""API keys: hashed at rest, shown once, scoped (agency or mall), listed without secrets,
revocable; an agency admin acts only on its own agency."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from tests.gateway.interface.conftest import ADMIN_KEY, MISSING_AGENCY

# issuing a key asks the queue whether the agency exists
pytestmark = pytest.mark.usefixtures("agencies_stand_in")

AGENCY_A = "agency-a"
AGENCY_B = "agency-b"


def issue(gateway, agency, role, key=ADMIN_KEY, **body):
    return gateway.request(
        "POST", f"/v1/agencies/{agency}/api-keys", key, json={"role": role, **body}
    )


def test_keys_are_stored_as_hashes_listed_without_secrets_and_revocable(gateway):
    admin_a = issue(gateway, AGENCY_A, "agency_admin")
    assert admin_a.status_code == 201, admin_a.text
    admin_a = admin_a.json()["key"]
    officer = issue(gateway, AGENCY_A, "officer", key=admin_a, label="Loket 1")
    assert officer.status_code == 201, officer.text
    officer = officer.json()
    assert officer["scope"] == "agency" and officer["key"].startswith("mpp_")

    engine = sa.create_engine(gateway.config["DB_URL"])
    with engine.connect() as conn:
        stored = conn.execute(sa.text("SELECT * FROM api_keys")).mappings().all()
    engine.dispose()
    assert all(officer["key"] not in str(dict(row)) for row in stored)

    listed = gateway.request("GET", f"/v1/agencies/{AGENCY_A}/api-keys", admin_a)
    assert listed.status_code == 200, listed.text
    page = listed.json()
    assert {k["id"] for k in page["items"]} >= {officer["id"]} and page["next_cursor"] is None
    assert all("key" not in k for k in page["items"])

    # the key works (and the gateway now keeps it resolved) until it is revoked
    used = gateway.request("POST", "/v1/counters/c1/call-next", officer["key"])
    assert used.status_code != 401, used.text
    gone = gateway.request("DELETE", f"/v1/agencies/{AGENCY_A}/api-keys/{officer['id']}", admin_a)
    assert gone.status_code == 204
    denied = gateway.request("POST", "/v1/counters/c1/call-next", officer["key"])
    assert denied.status_code == 401 and denied.json()["error"]["code"] == "UNAUTHORIZED"
    again = gateway.request("DELETE", f"/v1/agencies/{AGENCY_A}/api-keys/{officer['id']}", admin_a)
    assert again.status_code == 404


def test_agency_admin_cannot_touch_another_agency_or_mint_admins(gateway):
    admin_a = issue(gateway, AGENCY_A, "agency_admin").json()["key"]
    officer_b = issue(gateway, AGENCY_B, "officer").json()
    assert issue(gateway, AGENCY_B, "officer", key=admin_a).status_code == 403
    listed = gateway.request("GET", f"/v1/agencies/{AGENCY_B}/api-keys", admin_a)
    assert listed.status_code == 403
    revoke = gateway.request(
        "DELETE", f"/v1/agencies/{AGENCY_B}/api-keys/{officer_b['id']}", admin_a
    )
    assert revoke.status_code == 403
    assert issue(gateway, AGENCY_A, "agency_admin", key=admin_a).status_code == 403
    bad_role = issue(gateway, AGENCY_A, "mall_admin", key=admin_a)
    assert bad_role.status_code == 422 and "role" in bad_role.json()["error"]["details"]


def test_kiosk_keys_are_mall_wide_and_display_keys_scoped_as_asked(gateway):
    assert issue(gateway, AGENCY_A, "kiosk", scope="agency").json()["scope"] == "mall"
    assert issue(gateway, AGENCY_A, "display").json()["scope"] == "agency"
    assert issue(gateway, AGENCY_A, "display", scope="mall").json()["scope"] == "mall"
    assert issue(gateway, AGENCY_A, "officer", scope="mall").json()["scope"] == "agency"


def test_only_the_mall_admin_mints_mall_scope_display_keys(gateway):
    """Found 2 of issue 15: a mall-scope display key sees every agency's board."""
    admin_a = issue(gateway, AGENCY_A, "agency_admin").json()["key"]
    refused = issue(gateway, AGENCY_A, "display", key=admin_a, scope="mall")
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "FORBIDDEN"
    assert issue(gateway, AGENCY_A, "display", key=admin_a).json()["scope"] == "agency"


def test_key_list_pages_with_an_opaque_cursor(gateway):
    for i in range(5):
        assert issue(gateway, AGENCY_A, "officer", label=f"k{i}").status_code == 201
    seen, cursor = [], None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = gateway.request(
            "GET", f"/v1/agencies/{AGENCY_A}/api-keys", ADMIN_KEY, params=params
        ).json()
        assert len(page["items"]) <= 2
        seen += [k["label"] for k in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [f"k{i}" for i in range(5)]
    for bad in ({"limit": 0}, {"limit": 101}, {"cursor": "bm9wZQ"}, {"cursor": "%%%"}):
        answer = gateway.request("GET", f"/v1/agencies/{AGENCY_A}/api-keys", ADMIN_KEY, params=bad)
        assert answer.status_code == 422, (bad, answer.text)


def test_no_key_is_issued_for_an_agency_that_does_not_exist(gateway):
    """Issue 15: a key could be issued for any agency id; the queue is asked first now."""
    missing = issue(gateway, MISSING_AGENCY, "officer")
    assert missing.status_code == 404, missing.text
    assert missing.json()["error"]["code"] == "AGENCY_NOT_FOUND"
    listed = gateway.request("GET", f"/v1/agencies/{MISSING_AGENCY}/api-keys", ADMIN_KEY)
    assert listed.status_code == 200 and listed.json()["items"] == []
    assert issue(gateway, AGENCY_A, "officer").status_code == 201
