"""API keys and who may call what, on a real gateway database: a key authenticates as its role
and agency, the route table's roles and agency rule decide (mall_admin everywhere, an agency's
key only for its agency), a revoked key answers 401 at once in this process, and the configured
bootstrap key is a recorded mall_admin key that can be revoked like any other."""

from __future__ import annotations

import pytest

import mpp_gateway.service  # noqa: F401 - declaring the routes fills the route table
from mpp_contracts.errors import Forbidden, NotFound, Unauthorized
from mpp_gateway import auth
from mpp_gateway.http import ROUTES
from mpp_gateway.responses import AGENCY_ADMIN, OFFICER

BOOTSTRAP = "usecases-bootstrap-key"


def issue(desk, role: str, agency_id: str | None, scope: str | None = None) -> dict:
    return desk(lambda uow: auth.issue_key(uow.session, role, agency_id, f"{role} key", scope))


def who(desk, key: str, known: auth.PrincipalCache | None = None) -> auth.Principal:
    return desk(lambda uow: auth.authenticate(uow.session, f"Bearer {key}", BOOTSTRAP, known))


def route_roles(name: str) -> tuple[str, ...]:
    return next(spec.roles for spec in ROUTES if spec.name == name)


def test_a_key_acts_as_its_role_for_its_agency_only(desk):
    officer = issue(desk, "officer", "ag-1")
    admin = issue(desk, "agency_admin", "ag-1")

    principal = who(desk, officer["key"])

    assert principal == auth.Principal(officer["id"], "officer", "ag-1", "ag-1")
    assert route_roles("call_next") == OFFICER
    auth.authorize(principal, route_roles("call_next"))
    with pytest.raises(Forbidden):  # an officer issues no keys
        auth.authorize(principal, route_roles("issue_api_key"), "ag-1")
    auth.authorize(who(desk, admin["key"]), AGENCY_ADMIN, "ag-1")
    with pytest.raises(Forbidden) as other_agency:
        auth.authorize(who(desk, admin["key"]), AGENCY_ADMIN, "ag-2")
    assert other_agency.value.code == "FORBIDDEN"
    mall_admin = who(desk, BOOTSTRAP)
    auth.authorize(mall_admin, AGENCY_ADMIN, "ag-2")  # mall_admin acts on every agency
    with pytest.raises(Unauthorized):
        who(desk, "not-a-key-anyone-issued")


def test_kiosks_are_mall_wide_and_a_display_only_when_asked(desk):
    kiosk = who(desk, issue(desk, "kiosk", "ag-1")["key"])
    board = who(desk, issue(desk, "display", "ag-1")["key"])
    hall = who(desk, issue(desk, "display", "ag-1", scope="mall")["key"])

    assert (kiosk.agency_id, kiosk.owner_agency_id) == (None, "ag-1")
    assert board.agency_id == "ag-1"
    assert hall.agency_id is None


def test_a_revoked_key_answers_401_at_once_even_from_the_cache(desk):
    known = auth.PrincipalCache(ttl=60)
    officer = issue(desk, "officer", "ag-1")
    assert who(desk, officer["key"], known).role == "officer"  # now cached

    with pytest.raises(NotFound):  # another agency cannot revoke it
        desk(lambda uow: auth.revoke_key(uow.session, "ag-2", officer["id"]))
    desk(lambda uow: auth.revoke_key(uow.session, "ag-1", officer["id"]))
    known.forget(officer["id"])  # what the revoke route does in this process

    with pytest.raises(Unauthorized):
        who(desk, officer["key"], known)
    with pytest.raises(NotFound):  # revoked once
        desk(lambda uow: auth.revoke_key(uow.session, "ag-1", officer["id"]))
    listed, _ = desk(lambda uow: auth.list_keys(uow.session, "ag-1", None, 10))
    assert [(k["id"], k["revoked_at"] is not None) for k in listed] == [(officer["id"], True)]


def test_the_bootstrap_key_is_recorded_and_can_be_revoked(desk):
    first = who(desk, BOOTSTRAP)
    assert first.key_id == auth.bootstrap_id(BOOTSTRAP) and first.role == "mall_admin"

    desk(lambda uow: auth.revoke_key(uow.session, None, first.key_id))

    with pytest.raises(Unauthorized):  # still configured, but revoked
        who(desk, BOOTSTRAP)
