"""Resolved API keys are kept for a few seconds: the database is asked once per key, not on every
request; unknown keys are never kept; a revoked key is forgotten at once; ``ttl`` 0 keeps none."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from mpp_contracts.errors import Unauthorized
from mpp_gateway import auth


class CountingSession:
    """Answers the key lookup with ``row`` and counts how often it was asked."""

    def __init__(self, row) -> None:
        self.row = row
        self.lookups = 0

    def execute(self, _statement):
        self.lookups += 1
        return SimpleNamespace(first=lambda: self.row)


def officer_row(key_id: str = "k1"):
    return SimpleNamespace(
        id=key_id, role="officer", agency_id="a1", scope="agency", revoked_at=None
    )


def test_a_known_key_is_looked_up_once_while_kept():
    session, known = CountingSession(officer_row()), auth.PrincipalCache(ttl=60)
    first = auth.authenticate(session, "Bearer mpp_secret", None, known)
    again = auth.authenticate(session, "Bearer mpp_secret", None, known)
    assert first == again == auth.Principal("k1", "officer", "a1", "a1")
    assert session.lookups == 1


def test_unknown_keys_are_not_kept():
    session, known = CountingSession(None), auth.PrincipalCache(ttl=60)
    for _ in range(2):
        with pytest.raises(Unauthorized):
            auth.authenticate(session, "Bearer mpp_guess", None, known)
    assert session.lookups == 2


def test_a_forgotten_key_is_looked_up_again_and_refused_once_revoked():
    row = officer_row("k1")
    session, known = CountingSession(row), auth.PrincipalCache(ttl=60)
    auth.authenticate(session, "Bearer mpp_secret", None, known)
    known.forget("k2")  # another key: this one stays kept
    auth.authenticate(session, "Bearer mpp_secret", None, known)
    assert session.lookups == 1
    row.revoked_at = "now"
    known.forget("k1")
    with pytest.raises(Unauthorized):
        auth.authenticate(session, "Bearer mpp_secret", None, known)
    assert session.lookups == 2


def test_ttl_zero_keeps_nothing():
    session, known = CountingSession(officer_row()), auth.PrincipalCache(ttl=0)
    auth.authenticate(session, "Bearer mpp_secret", None, known)
    auth.authenticate(session, "Bearer mpp_secret", None, known)
    assert session.lookups == 2
