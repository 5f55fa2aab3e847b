"""When a citizen is invited to rate, and the one-time token the invitation carries.

A visit is rated once it is over: the ticket is completed (the queue service's fact) and nothing
is owed on it (the payment service's fact: ``payment_succeeded``, or ``payment_not_required``
when the service's fee at completion is 0). Whether a ticket needs paying is the payment
service's decision alone; this service never reads a fee. The facts come as events, in any
order, twice, or late, so the rule is a pure function of the facts seen so far, and recording a
fact again changes nothing.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

#: 32 random bytes = 256 bits, URL-safe base64 (43 characters): unguessable and fits in a link.
TOKEN_BYTES = 32

TokenStatus = Literal["ok", "expired", "used"]


@dataclass(frozen=True)
class InvitationState:
    """Facts seen so far for one ticket: ``completed`` (the queue's ticket_completed),
    ``settled`` (the payment service's payment_succeeded or payment_not_required) and
    ``invited`` (a token was issued, so duplicate events do not invite twice)."""

    completed: bool = False
    settled: bool = False
    invited: bool = False


def ready_to_invite(state: InvitationState) -> bool:
    """Invite once the ticket is completed and settled; never twice."""
    return state.completed and state.settled and not state.invited


def new_token() -> str:
    """A fresh one-time rating token (256 bits from ``secrets``, URL-safe, no padding)."""
    return secrets.token_urlsafe(TOKEN_BYTES)


def token_expires_at(issued_at: datetime, days: int) -> datetime:
    """Expiry instant of a token issued at ``issued_at`` that lives ``days`` × 24 hours."""
    if issued_at.utcoffset() is None:
        raise ValueError("issued_at must be timezone-aware")
    if days < 1:
        raise ValueError(f"a token must live at least one day, got {days}")
    return issued_at + timedelta(days=days)


def token_usable(expires_at: datetime, used_at: datetime | None, now: datetime) -> TokenStatus:
    """'used' wins over 'expired' (the citizen already rated; telling them so is the truth).

    A token expires at ``expires_at`` exactly: usable while now < expires_at.
    """
    if used_at is not None:
        return "used"
    if now >= expires_at:
        return "expired"
    return "ok"
