"""Errors raised by the payment domain.

They live in one module so the service layer can map each domain failure to a contract error (and an
HTTP status in the gateway) from a single table, whichever rule raised it.
"""


class PaymentDomainError(Exception):
    """Base class: a rule of the payment domain refused the input."""


class InvalidQris(PaymentDomainError, ValueError):
    """A QRIS payload is malformed or its CRC does not match (never pay from it)."""


class InvalidTransition(PaymentDomainError):
    """A payment status change that the state machine does not allow."""

    def __init__(self, current: str, target: str) -> None:
        super().__init__(f"cannot move a payment from {current!r} to {target!r}")
        self.current = current
        self.target = target


class InvalidAmount(PaymentDomainError, ValueError):
    """An amount that is not a positive integer number of rupiah where one is required."""


class RefundExceedsPaid(PaymentDomainError):
    """A refund would return more money than was paid and not yet refunded."""


class UnknownProviderStatus(PaymentDomainError):
    """A provider sent a status we have no mapping for; it must be looked at, not guessed."""


class Unbalanced(PaymentDomainError, ValueError):
    """A journal entry whose debits and credits differ: it would create or destroy money."""


class SettlementError(PaymentDomainError, ValueError):
    """Settlement input is inconsistent (e.g. a refund for a payment that was not supplied)."""
