import base64
from datetime import UTC, datetime, timedelta
from itertools import permutations

import pytest

from mpp_rating.domain.invitations import (
    InvitationState,
    new_token,
    ready_to_invite,
    token_expires_at,
    token_usable,
)

T0 = datetime(2024, 5, 2, 2, 0, tzinfo=UTC)


def test_a_completed_ticket_waits_for_the_payment_services_verdict() -> None:
    """Free or paid is not this service's call: completion alone never invites, whatever fee
    the queue's event carried; the payment service's fact (paid, or nothing required) does."""
    assert not ready_to_invite(InvitationState())
    assert not ready_to_invite(InvitationState(completed=True))
    assert ready_to_invite(InvitationState(completed=True, settled=True))


def test_settlement_alone_does_not_invite() -> None:
    assert not ready_to_invite(InvitationState(settled=True))


@pytest.mark.parametrize("order", list(permutations(["completed", "settled", "settled again"])))
def test_the_order_of_the_facts_does_not_matter(order: tuple[str, ...]) -> None:
    seen: dict[str, bool] = {}
    for fact in order:
        seen[fact.removesuffix(" again")] = True
    assert ready_to_invite(InvitationState(**seen))


def test_never_invited_twice() -> None:
    assert not ready_to_invite(InvitationState(completed=True, settled=True, invited=True))


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
