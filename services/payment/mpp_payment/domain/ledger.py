"""A double-entry journal of the money the mall holds on behalf of agencies.

Every rupiah that moves is written twice, once as a debit and once as a credit, so the books cannot
silently gain or lose money: the sum of all account balances is always zero, and each account's
balance answers one question (how much does the provider hold for us? what do we owe agency X?).

Accounts (balance = debit - credit):
- ``provider_clearing:<provider>``: asset, money collected by a provider and not yet passed on.
- ``agency_payable:<agency_id>``: liability, what the mall owes the agency (owed = negative).
- ``overpayment_suspense:<agency_id>``: liability, money a citizen paid twice on one of the
  agency's invoices (a superseded charge attempt, or a second payment): owed back to the citizen,
  never to the agency, until it is refunded.
A payment debits clearing and credits the agency; a refund reverses both sides. An overpayment
credits suspense instead of the agency; its refund debits suspense.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from .errors import InvalidAmount, Unbalanced

PROVIDER_CLEARING = "provider_clearing"
AGENCY_PAYABLE = "agency_payable"
OVERPAYMENT_SUSPENSE = "overpayment_suspense"


def provider_clearing(provider: str) -> str:
    return f"{PROVIDER_CLEARING}:{_account_key(provider)}"


def agency_payable(agency_id: str) -> str:
    return f"{AGENCY_PAYABLE}:{_account_key(agency_id)}"


def overpayment_suspense(agency_id: str) -> str:
    return f"{OVERPAYMENT_SUSPENSE}:{_account_key(agency_id)}"


def _account_key(key: str) -> str:
    if not key or ":" in key or key != key.strip():
        raise ValueError(f"account key must be non-empty, trimmed and without ':', got {key!r}")
    return key


def _is_rupiah(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass(frozen=True)
class Line:
    """One side of an entry: exactly one of ``debit``/``credit`` is positive, the other zero."""

    account: str
    debit: int = 0
    credit: int = 0

    def __post_init__(self) -> None:
        if not self.account:
            raise ValueError("a journal line needs an account")
        if not (_is_rupiah(self.debit) and _is_rupiah(self.credit)):
            raise InvalidAmount("journal amounts are integers of rupiah")
        if self.debit < 0 or self.credit < 0 or (self.debit > 0) == (self.credit > 0):
            raise InvalidAmount(
                f"line on {self.account}: exactly one of debit/credit must be positive "
                f"(got debit={self.debit}, credit={self.credit})"
            )


@dataclass(frozen=True)
class JournalEntry:
    """A balanced set of lines; refused at construction if debits and credits differ."""

    lines: tuple[Line, ...]
    memo: str
    occurred_at: datetime
    reference: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "lines", tuple(self.lines))
        if len(self.lines) < 2:
            raise Unbalanced("an entry needs at least two lines")
        debits = sum(line.debit for line in self.lines)
        credits = sum(line.credit for line in self.lines)
        if debits != credits:
            raise Unbalanced(f"debits {debits} != credits {credits} in {self.memo!r}")
        if self.occurred_at.tzinfo is None:
            raise ValueError("occurred_at must be timezone-aware")

    @property
    def total(self) -> int:
        return sum(line.debit for line in self.lines)


def _move(
    debit: str, credit: str, amount: int, *, memo: str, at: datetime, reference: str, **metadata
) -> tuple[JournalEntry, ...]:
    """One balanced entry moving ``amount`` from the ``credit`` account to the ``debit`` one."""
    _check_amount(amount)
    entry = JournalEntry(
        lines=(Line(debit, debit=amount), Line(credit, credit=amount)),
        memo=memo,
        occurred_at=at,
        reference=reference,
        metadata=metadata,
    )
    return (entry,)


def entries_for_payment(
    payment_id: str, agency_id: str, provider: str, amount: int, at: datetime
) -> tuple[JournalEntry, ...]:
    """Money received: the provider holds it (debit clearing), the mall owes it (credit agency)."""
    return _move(
        provider_clearing(provider),
        agency_payable(agency_id),
        amount,
        memo=f"payment {payment_id}",
        at=at,
        reference=payment_id,
        kind="payment",
        agency_id=agency_id,
        provider=provider,
    )


def entries_for_refund(
    refund_id: str, payment_id: str, agency_id: str, provider: str, amount: int, at: datetime
) -> tuple[JournalEntry, ...]:
    """Money returned to the citizen: the exact reverse of a payment, for ``amount`` only."""
    return _move(
        agency_payable(agency_id),
        provider_clearing(provider),
        amount,
        memo=f"refund {refund_id} of payment {payment_id}",
        at=at,
        reference=refund_id,
        kind="refund",
        payment_id=payment_id,
        agency_id=agency_id,
        provider=provider,
    )


def entries_for_overpayment(
    order_id: str, payment_id: str, agency_id: str, provider: str, amount: int, at: datetime
) -> tuple[JournalEntry, ...]:
    """Money received twice for one invoice: the provider holds it (debit clearing), but it is
    owed back to the citizen (credit suspense), not to the agency."""
    return _move(
        provider_clearing(provider),
        overpayment_suspense(agency_id),
        amount,
        memo=f"overpayment {order_id} of payment {payment_id}",
        at=at,
        reference=payment_id,
        kind="overpayment",
        agency_id=agency_id,
        provider=provider,
    )


def entries_for_overpayment_refund(
    refund_id: str, payment_id: str, agency_id: str, provider: str, amount: int, at: datetime
) -> tuple[JournalEntry, ...]:
    """An overpayment returned to the citizen: the reverse of :func:`entries_for_overpayment`."""
    return _move(
        overpayment_suspense(agency_id),
        provider_clearing(provider),
        amount,
        memo=f"refund {refund_id} of an overpayment on payment {payment_id}",
        at=at,
        reference=refund_id,
        kind="overpay_refund",
        agency_id=agency_id,
        provider=provider,
    )


def _check_amount(amount: int) -> None:
    if not _is_rupiah(amount) or amount <= 0:
        raise InvalidAmount(f"amount must be a positive integer of rupiah, got {amount!r}")


def balances(entries: Iterable[JournalEntry]) -> dict[str, int]:
    """Balance (debit - credit) per account that appears in ``entries``."""
    totals: dict[str, int] = defaultdict(int)
    for entry in entries:
        for line in entry.lines:
            totals[line.account] += line.debit - line.credit
    return dict(totals)
