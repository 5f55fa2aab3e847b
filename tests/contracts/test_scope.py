"""The one rule of who may act for an agency (issue 19: it had four copies, with different
behaviour for a missing actor and a role outside the resource's)."""

from __future__ import annotations

import pytest

from mpp_contracts.errors import Forbidden
from mpp_contracts.scope import require_agency_scope

STAFF = ("officer", "agency_admin")


def refusal(actor, agency_id="ag-1", roles=STAFF, **names) -> str | None:
    try:
        require_agency_scope(actor, agency_id, roles, **names)
    except Forbidden as error:
        return error.code
    return None


@pytest.mark.parametrize(
    ("actor", "agency_id", "expected"),
    [
        ({"role": "mall_admin", "agency_id": None}, "ag-1", None),  # every agency
        ({"role": "officer", "agency_id": "ag-1"}, "ag-1", None),
        ({"role": "agency_admin", "agency_id": "ag-1"}, None, None),  # no agency named: role
        ({"role": "officer", "agency_id": "ag-2"}, "ag-1", "WRONG_AGENCY"),
        ({"role": "kiosk", "agency_id": None}, "ag-1", "FORBIDDEN"),  # a role outside roles
        ({"role": "display", "agency_id": "ag-1"}, "ag-1", "FORBIDDEN"),
        (None, "ag-1", "FORBIDDEN"),  # nobody acts anonymously, whatever the resource
        ({}, "ag-1", "FORBIDDEN"),
    ],
)
def test_who_may_act_for_an_agency(actor, agency_id, expected):
    assert refusal(actor, agency_id, code="WRONG_AGENCY") == expected


def test_only_another_agencys_key_gets_the_resources_own_code():
    officer = {"role": "officer", "agency_id": "ag-2"}
    assert refusal(officer, roles=("agency_admin",), code="OUT_OF_SCOPE") == "FORBIDDEN"
    admin = {"role": "agency_admin", "agency_id": "ag-2"}
    assert refusal(admin, roles=("agency_admin",), code="OUT_OF_SCOPE") == "OUT_OF_SCOPE"
