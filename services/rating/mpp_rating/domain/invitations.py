"""When a citizen is invited to rate, and the one-time token the invitation carries.

The facts that decide the invitation come from two services as events (the queue service's ticket
completion with the service fee, the payment service's payment success) and may arrive in any order,
twice, or late. So the rule is a pure function of the facts seen so far, and recording a fact again
changes nothing.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Literal

#: 32 random bytes = 256 bits, URL-safe base64 (43 characters): unguessable and fits in a link.
TOKEN_BYTES = 32

TokenStatus = Literal["ok", "expired", "used"]


def needs_payment_before_invite(fee_idr: int) -> bool:
    """A paid service counts as finished only once paid, so only then is it rated."""
    if fee_idr < 0:
        raise ValueError(f"fee must not be negative, got {fee_idr}")
    return fee_idr > 0


@dataclass(frozen=True)
class InvitationState:
    """Facts seen so far for one ticket; ``fee_idr`` is None until the completion arrives.

    ``invited`` is recorded once the invitation is sent, so duplicate events do not invite twice.
    """

    completed: bool = False
    fee_idr: int | None = None
    paid: bool = False
    invited: bool = False

    def with_completion(self, fee_idr: int) -> InvitationState:
        """Record that the ticket was completed with this fee (integer rupiah)."""
        needs_payment_before_invite(fee_idr)
        if self.completed and self.fee_idr != fee_idr:
            raise ValueError(f"completed twice with different fees: {self.fee_idr}, {fee_idr}")
        return replace(self, completed=True, fee_idr=fee_idr)

    def with_payment(self) -> InvitationState:
        """Record that the payment succeeded (may come before the completion)."""
        return replace(self, paid=True)

    def with_invitation(self) -> InvitationState:
        """Record that the invitation was sent."""
        return replace(self, invited=True)


def ready_to_invite(state: InvitationState) -> bool:
    """Free service: invite on completion; paid service: once completed and paid. Never twice."""
    if state.invited or not state.completed or state.fee_idr is None:
        return False
    return state.paid or not needs_payment_before_invite(state.fee_idr)


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
