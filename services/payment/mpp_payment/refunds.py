"""Refunds: part or all of what was paid, through the payment's provider, idempotent per the
client's key; an invoice paid twice is refunded from its overpayment first.

Like every use case that changes a payment, a refund first locks its row, decides with the pure
domain rules (``domain.states``), then writes the refund, the payment, its journal lines and its
outbox event in the caller's one transaction.
"""

from __future__ import annotations

import hashlib
import json
import uuid

from sqlalchemy import insert, select, update

from mpp_contracts.errors import BadRequest, Conflict
from mpp_payment.adapters.tables import charge_attempts, payments, refunds
from mpp_payment.domain import attempts, ledger, states
from mpp_payment.domain.errors import InvalidTransition, RefundExceedsPaid
from mpp_payment.usecases import (
    Settings,
    check_agency,
    event_payload,
    iso,
    journal,
    load_attempt,
    load_payment,
    make_provider,
    now_utc,
)

MAX_IDEMPOTENCY_KEY = 200  # as the gateway accepts and docs/api-guide.md promises


def _request_hash(payment_id: str, data: dict) -> str:
    canonical = json.dumps(
        {"payment_id": payment_id, "amount_idr": data["amount_idr"], "reason": data.get("reason")},
        sort_keys=True,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def _refund_view(refund: dict, payment: dict) -> dict:
    return {
        "id": refund["id"],
        "payment_id": refund["payment_id"],
        "amount_idr": refund["amount_idr"],
        "reason": refund["reason"],
        "status": refund["status"],
        "provider_ref": refund["provider_ref"],
        "created_at": iso(refund["created_at"]),
        "payment_status": payment["status"],
        "refunded_total_idr": payment["refunded_idr"],
        "overpayment": refund.get("overpayment_attempt") is not None,
    }


def refund(
    uow,
    settings: Settings,
    actor: dict | None,
    payment_id: str,
    data: dict,
    idempotency_key: str | None,
    *,
    provider=None,
) -> dict:
    """Refund part or all of what was paid, through the payment's provider.

    The Idempotency-Key is the client's own: unique per API key that sends it (another agency's
    key of the same spelling is another refund, and learns nothing of it). The same key and body
    answer the first refund again; the same key with another body is a 409. The provider's
    refund key is derived from the scope and the key, so it is unique across the mall.
    """
    if not idempotency_key or len(idempotency_key) > MAX_IDEMPOTENCY_KEY:
        raise BadRequest(
            "IDEMPOTENCY_KEY_REQUIRED",
            f"a refund needs an Idempotency-Key (≤{MAX_IDEMPOTENCY_KEY})",
        )
    scope = str((actor or {}).get("key_id") or "")[:64]
    row = load_payment(uow.session, payment_id, lock=True)
    check_agency(actor, row["agency_id"])
    digest = _request_hash(payment_id, data)
    earlier = (
        uow.session.execute(
            select(refunds).where(
                refunds.c.key_scope == scope, refunds.c.idempotency_key == idempotency_key
            )
        )
        .mappings()
        .first()
    )
    if earlier is not None:
        if earlier["request_hash"] != digest:
            raise Conflict(
                "IDEMPOTENCY_KEY_REUSED", "this Idempotency-Key was used with another request"
            )
        return _refund_view(dict(earlier), row)
    provider = provider or make_provider(row["provider"], settings, uow.session)
    provider_key = hashlib.sha256(f"{scope}\n{idempotency_key}".encode()).hexdigest()[:40]
    record = {
        "id": str(uuid.uuid4()),
        "payment_id": payment_id,
        "agency_id": row["agency_id"],
        "amount_idr": data["amount_idr"],
        "reason": data.get("reason"),
        "key_scope": scope,
        "idempotency_key": idempotency_key,
        "request_hash": digest,
        "actor_key_id": (actor or {}).get("key_id"),
        "overpayment_attempt": None,
    }
    over = _open_overpayment(uow.session, payment_id)
    if over is not None:
        return _refund_overpayment(uow, provider, provider_key, row, over, record)
    amount = data["amount_idr"]
    paid = row["paid_amount_idr"] or 0
    try:
        if row["status"] not in {s.value for s in states.MONEY_RECEIVED}:
            raise InvalidTransition(row["status"], "refunded")
        target = states.refund_outcome(paid, row["refunded_idr"], amount)
        states.transition(row["status"], target)
    except InvalidTransition as exc:
        raise Conflict("INVALID_TRANSITION", str(exc), {"status": row["status"]}) from None
    except RefundExceedsPaid as exc:
        raise Conflict(
            "REFUND_EXCEEDS_PAID", str(exc), {"refundable_idr": paid - row["refunded_idr"]}
        ) from None
    paid_with = load_attempt(uow.session, payment_id, row["paid_attempt"] or row["method_attempt"])
    order = paid_with["order_id"] if paid_with else attempts.order_id(payment_id, 1)
    done = provider.refund(order, row["provider_ref"], amount, provider_key)
    now = now_utc()
    record.update(status=done.status, provider_ref=done.provider_ref, created_at=now)
    uow.session.execute(insert(refunds).values(**record))
    total = row["refunded_idr"] + amount
    uow.session.execute(
        update(payments)
        .where(payments.c.id == payment_id)
        .values(status=target.value, refunded_idr=total, updated_at=now)
    )
    row.update(status=target.value, refunded_idr=total)
    journal(
        uow,
        ledger.entries_for_refund(
            record["id"], payment_id, row["agency_id"], row["provider"], amount, now
        ),
        row["agency_id"],
    )
    uow.add_event(
        "payment_refunded",
        {
            **event_payload(row),
            "refund_id": record["id"],
            "refund_amount_idr": amount,
            "refunded_total_idr": total,
        },
    )
    return _refund_view(record, row)


def _open_overpayment(session, payment_id: str) -> dict | None:
    """The oldest attempt of the invoice holding an overpayment not yet fully refunded."""
    found = (
        session.execute(
            select(charge_attempts)
            .where(
                charge_attempts.c.payment_id == payment_id,
                charge_attempts.c.overpaid_idr > charge_attempts.c.overpaid_refunded_idr,
            )
            .order_by(charge_attempts.c.attempt)
        )
        .mappings()
        .first()
    )
    return dict(found) if found else None


def _refund_overpayment(uow, provider, provider_key: str, row: dict, over: dict, record) -> dict:
    """An invoice paid twice is refunded from the overpayment first: the citizen gets back the
    money the agency was never owed, through the attempt that received it, and the agency's
    payable (and its settlement) is untouched. Only then is the payment itself refundable."""
    amount = record["amount_idr"]
    left = over["overpaid_idr"] - over["overpaid_refunded_idr"]
    if amount > left:
        raise Conflict(
            "REFUND_EXCEEDS_PAID",
            f"this invoice holds an overpayment of {left}: refund it first",
            {"refundable_idr": left, "overpayment": True},
        )
    done = provider.refund(over["order_id"], over["provider_ref"], amount, provider_key)
    now = now_utc()
    record.update(
        status=done.status,
        provider_ref=done.provider_ref,
        created_at=now,
        overpayment_attempt=over["attempt"],
    )
    uow.session.execute(insert(refunds).values(**record))
    total = over["overpaid_refunded_idr"] + amount
    uow.session.execute(
        update(charge_attempts)
        .where(charge_attempts.c.id == over["id"])
        .values(overpaid_refunded_idr=total, updated_at=now)
    )
    journal(
        uow,
        ledger.entries_for_overpayment_refund(
            record["id"], row["id"], row["agency_id"], row["provider"], amount, now
        ),
        row["agency_id"],
    )
    uow.add_event(
        "payment_refunded",
        {
            **event_payload(row),
            "refund_id": record["id"],
            "refund_amount_idr": amount,
            "refunded_total_idr": total,  # of this overpayment: the payment's is unchanged
        },
    )
    return _refund_view(record, row)
