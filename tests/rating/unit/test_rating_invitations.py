import base64
from datetime import UTC, datetime, timedelta
from itertools import permutations

import pytest

from mpp_rating.domain.invitations import (
    InvitationState,
    needs_payment_before_invite,
    new_token,
    ready_to_invite,
    token_expires_at,
    token_usable,
)

T0 = datetime(2024, 5, 2, 2, 0, tzinfo=UTC)


@pytest.mark.parametrize(("fee", "expected"), [(0, False), (1, True), (350_000, True)])
def test_needs_payment_before_invite(fee: int, expected: bool) -> None:
    assert needs_payment_before_invite(fee) is expected


def test_negative_fee_is_rejected() -> None:
    with pytest.raises(ValueError):
        needs_payment_before_invite(-1)


def test_free_service_is_invited_on_completion() -> None:
    state = InvitationState()
    assert not ready_to_invite(state)
    assert ready_to_invite(state.with_completion(fee_idr=0))


def test_paid_service_waits_for_payment() -> None:
    completed = InvitationState().with_completion(fee_idr=50_000)
    assert not ready_to_invite(completed)
    assert ready_to_invite(completed.with_payment())


def test_payment_alone_does_not_invite() -> None:
    assert not ready_to_invite(InvitationState().with_payment())


# Each fact as a state transformer; facts may arrive in any order and more than once.
FACTS = {
    "completed": lambda s: s.with_completion(fee_idr=50_000),
    "paid": lambda s: s.with_payment(),
    "paid again": lambda s: s.with_payment(),
    "completed again": lambda s: s.with_completion(fee_idr=50_000),
}


@pytest.mark.parametrize("order", list(permutations(FACTS)))
def test_paid_service_order_of_facts_does_not_matter(order: tuple[str, ...]) -> None:
    state = InvitationState()
    for name in order:
        state = FACTS[name](state)
    assert ready_to_invite(state)
    assert state == InvitationState(completed=True, fee_idr=50_000, paid=True)


def test_never_invited_twice() -> None:
    state = InvitationState().with_completion(fee_idr=0).with_invitation()
    assert not ready_to_invite(state)
    assert not ready_to_invite(state.with_completion(fee_idr=0).with_payment())


def test_conflicting_fees_are_rejected() -> None:
    with pytest.raises(ValueError):
        InvitationState().with_completion(fee_idr=0).with_completion(fee_idr=10_000)


def test_new_token_is_url_safe_unique_and_at_least_128_bits() -> None:
    tokens = {new_token() for _ in range(200)}
    assert len(tokens) == 200
    for token in tokens:
        assert set(token) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        assert len(raw) * 8 >= 128


def test_token_expires_after_whole_days() -> None:
    assert token_expires_at(T0, 7) == T0 + timedelta(days=7)


@pytest.mark.parametrize(("issued_at", "days"), [(datetime(2024, 5, 2), 7), (T0, 0), (T0, -1)])
def test_token_expiry_rejects_naive_times_and_short_lives(issued_at: datetime, days: int) -> None:
    with pytest.raises(ValueError):
        token_expires_at(issued_at, days)


EXPIRES = T0 + timedelta(days=7)


@pytest.mark.parametrize(
    ("used_at", "now", "expected"),
    [
        (None, T0, "ok"),
        (None, EXPIRES - timedelta(microseconds=1), "ok"),
        (None, EXPIRES, "expired"),
        (None, EXPIRES + timedelta(days=1), "expired"),
        (T0 + timedelta(hours=1), T0 + timedelta(hours=2), "used"),
        (T0 + timedelta(hours=1), EXPIRES + timedelta(days=1), "used"),
    ],
)
def test_token_usable(used_at: datetime | None, now: datetime, expected: str) -> None:
    assert token_usable(EXPIRES, used_at, now) == expected
