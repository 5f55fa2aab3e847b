"""Opening invoices and making their provider charges, one charge attempt at a time.

The invoice and its first charge attempt are stored at once, in the handler's transaction, with
``payment_requested``; the provider is not called there. The charge attempt is a durable work
item: :func:`run_charge` claims it (a short lease, committed), calls the provider with **no
database transaction open** and the attempt's id as the provider's idempotency key, then stores
the answer in a new transaction. A provider outage only leaves the attempt waiting (retried with
backoff, the invoice shown as "preparing payment"); a worker killed after the provider answered
leaves the claim to lapse, and the retry, with the same key, gets the same charge back.
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime, timedelta

from sqlalchemy import func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from mpp_contracts.errors import Conflict, ValidationFailed
from mpp_payment.adapters import providers as adapters
from mpp_payment.adapters.tables import charge_attempts, payments
from mpp_payment.domain import attempts, numbers, states
from mpp_payment.domain.attempts import AttemptStatus
from mpp_payment.usecases import (
    Settings,
    event_payload,
    get_payment,
    load_payment,
    make_provider,
    now_utc,
    payment_view,
)

_log = logging.getLogger(__name__)

LEASE_SECONDS = 60  # a claimed charge is tried again by another worker only after this
METHOD_COLUMNS = ("provider_ref", "qris_payload", "va_number", "ewallet_ref", "checkout_url")


def _new_attempt(uow, row: dict, number: int, now: datetime) -> str:
    attempt_id = str(uuid.uuid4())
    uow.session.execute(
        insert(charge_attempts).values(
            id=attempt_id,
            payment_id=row["id"],
            attempt=number,
            order_id=attempts.order_id(row["id"], number),
            provider=row["provider"],
            method=row["method"],
            status=AttemptStatus.CREATING.value,
            amount_idr=row["amount_idr"],
            overpaid_idr=0,
            overpaid_refunded_idr=0,
            tries=0,
            next_try_at=now,
            created_at=now,
            updated_at=now,
        )
    )
    return attempt_id


def open_invoice(uow, settings: Settings, ticket: dict, amount: int) -> str | None:
    """Store the one invoice of a completed ticket whose service has a fee (``amount``, from
    :func:`~mpp_payment.usecases.invoice_amount`) and its first charge attempt; the id of that
    attempt, for :func:`run_charge` (None: the ticket has its invoice already). A second invoice
    for the same ticket is refused by a unique key."""
    exists = uow.session.execute(
        select(payments.c.id).where(payments.c.ticket_id == ticket["ticket_id"])
    ).first()
    if exists:
        return None
    created = now_utc()
    method = settings.default_method
    row = {
        "id": str(uuid.uuid4()),
        "ticket_id": ticket["ticket_id"],
        "ticket_number": ticket["number"],
        "agency_id": ticket["agency_id"],
        "service_id": ticket["service_id"],
        "service_code": ticket["service_code"],
        "amount_idr": amount,
        "status": states.PaymentStatus.PENDING.value,
        "method": method,
        "provider": settings.provider,
        "method_attempt": 1,
        # provisional: the deadline starts again when the charge is ready
        "expires_at": numbers.expires_at(created, method, settings.expiry_minutes),
        "refunded_idr": 0,
        "created_at": created,
        "updated_at": created,
    }
    try:
        with uow.session.begin_nested():
            uow.session.execute(insert(payments).values(**row))
    except IntegrityError:
        return None  # a concurrent delivery opened it first
    attempt_id = _new_attempt(uow, row, 1, created)
    uow.add_event("payment_requested", event_payload(row))
    return attempt_id


def choose_method(uow, settings: Settings, payment_id: str, method: str) -> tuple[dict, str | None]:
    """The citizen switches a pending invoice to another method: the current attempt is
    superseded (its charge stays payable at the provider until it lapses; money on it is still
    recorded) and a new attempt waits for its charge. Choosing the current method again changes
    nothing. Returns the invoice's view and the new attempt's id (for :func:`run_charge`)."""
    if method not in adapters.METHODS:
        raise ValidationFailed(
            "VALIDATION_FAILED", "invalid fields", {"method": [f"one of {adapters.METHODS}"]}
        )
    row = load_payment(uow.session, payment_id, lock=True)
    if row["method"] == method:
        return get_payment(uow, payment_id), None
    if row["status"] != states.PaymentStatus.PENDING.value:
        raise Conflict("INVALID_TRANSITION", f"a {row['status']} payment cannot change method")
    now = now_utc()
    uow.session.execute(
        update(charge_attempts)
        .where(
            charge_attempts.c.payment_id == payment_id,
            charge_attempts.c.status.in_([s.value for s in attempts.OPEN]),
        )
        .values(status=AttemptStatus.SUPERSEDED.value, updated_at=now)
    )
    row.update(
        method=method,
        method_attempt=row["method_attempt"] + 1,
        expires_at=numbers.expires_at(now, method, settings.expiry_minutes),
        updated_at=now,
        **dict.fromkeys(METHOD_COLUMNS),
    )
    attempt_id = _new_attempt(uow, row, row["method_attempt"], now)
    uow.session.execute(
        update(payments)
        .where(payments.c.id == payment_id)
        .values({k: row[k] for k in ("method", "method_attempt", "expires_at", "updated_at")})
        .values(dict.fromkeys(METHOD_COLUMNS))
    )
    return payment_view(row, "preparing"), attempt_id


def waiting(uow) -> int:
    """How many attempts wait for their provider charge (the ``mpp_payment_charges_waiting``
    gauge: above 0 for minutes, the provider is failing)."""
    count = uow.session.execute(
        select(func.count()).where(charge_attempts.c.status == AttemptStatus.CREATING.value)
    ).scalar_one()
    uow.rollback()
    return int(count)


def due_charges(uow, limit: int = 20) -> list[str]:
    """Attempts waiting for their charge whose retry time has come, oldest first."""
    now = now_utc()
    ids = (
        uow.session.execute(
            select(charge_attempts.c.id)
            .where(
                charge_attempts.c.status == AttemptStatus.CREATING.value,
                or_(charge_attempts.c.next_try_at.is_(None), charge_attempts.c.next_try_at <= now),
            )
            .order_by(charge_attempts.c.next_try_at)
            .limit(limit)
        )
        .scalars()
        .all()
    )
    uow.rollback()
    return list(ids)


def _request(settings: Settings, attempt: dict, row: dict, now: datetime):
    minutes = settings.expiry_minutes[attempt["method"]]
    return adapters.ChargeRequest(
        payment_id=row["id"],
        order_id=attempt["order_id"],
        amount_idr=attempt["amount_idr"],
        method=attempt["method"],
        expires_at=now + timedelta(minutes=minutes),
        minutes=minutes,
        description=f"{row['service_code'] or 'layanan'} {row['ticket_number'] or ''}".strip(),
        qris_fields={
            "merchant_name": settings.merchant_name,
            "merchant_city": settings.merchant_city,
            "nmid": settings.nmid,
            "merchant_pan": settings.merchant_pan,
        },
        bill_number=(row["ticket_number"] or "").replace("-", "") + row["id"][:8].upper(),
        idempotency_key=attempt["id"],
    )


def run_charge(uow, settings: Settings, attempt_id: str, *, provider=None) -> bool:
    """Make the provider charge of one waiting attempt; True once its answer is stored.

    Three transactions, none open during the provider call: the claim (a lease, so replicas do
    not call at once), then, for the simulator whose book shares our database, its answer, then
    ours. A failed call is noted on the attempt with its next try (doubling, at most 5 min)."""
    now = now_utc()
    claimed = uow.session.execute(
        update(charge_attempts)
        .where(
            charge_attempts.c.id == attempt_id,
            charge_attempts.c.status == AttemptStatus.CREATING.value,
            or_(charge_attempts.c.next_try_at.is_(None), charge_attempts.c.next_try_at <= now),
        )
        .values(
            tries=charge_attempts.c.tries + 1,
            next_try_at=now + timedelta(seconds=LEASE_SECONDS),
            updated_at=now,
        )
    ).rowcount
    if not claimed:
        uow.rollback()
        return False
    attempt = dict(
        uow.session.execute(select(charge_attempts).where(charge_attempts.c.id == attempt_id))
        .mappings()
        .one()
    )
    row = load_payment(uow.session, attempt["payment_id"])
    uow.commit()  # the claim is kept; nothing is open while the provider is asked
    provider = provider or make_provider(attempt["provider"], settings, uow.session)
    try:
        charge = provider.charge(_request(settings, attempt, row, now))
    except Exception as exc:  # the work item records why and waits: never lost, never raised
        uow.rollback()
        _charge_failed(uow, attempt, exc)
        return False
    uow.commit()  # what the provider did is the provider's (the simulator's book is here)
    store_charge(uow, settings, attempt, charge)
    uow.commit()
    return True


def _charge_failed(uow, attempt: dict, exc: Exception) -> None:
    now = now_utc()
    reason = f"{getattr(exc, 'code', type(exc).__name__)}: {exc}"[:200]
    _log.warning(
        "charge not made yet",
        extra={"attempt": attempt["id"], "tries": attempt["tries"], "error": reason},
    )
    uow.session.execute(
        update(charge_attempts)
        .where(charge_attempts.c.id == attempt["id"])
        .values(
            last_error=reason,
            next_try_at=now + timedelta(seconds=attempts.retry_delay(attempt["tries"])),
            updated_at=now,
        )
    )
    uow.commit()


def store_charge(uow, settings: Settings, attempt: dict, charge: adapters.Charge) -> None:
    """Keep the provider's answer on its attempt. A still-waiting attempt goes live and, if it
    is the invoice's current one, its method data and a fresh deadline show on the invoice; an
    attempt superseded meanwhile only keeps the reference (reconciliation asks about it)."""
    now = now_utc()
    expires = numbers.expires_at(now, attempt["method"], settings.expiry_minutes)
    columns = {
        "provider_ref": charge.provider_ref,
        "qris_payload": charge.qris_payload,
        "va_number": charge.va_number,
        "ewallet_ref": charge.ewallet_ref,
        "checkout_url": charge.checkout_url,
    }
    went_live = uow.session.execute(
        update(charge_attempts)
        .where(
            charge_attempts.c.id == attempt["id"],
            charge_attempts.c.status == AttemptStatus.CREATING.value,
        )
        .values(
            status=AttemptStatus.LIVE.value,
            expires_at=expires,
            next_try_at=None,
            last_error=None,
            updated_at=now,
            **columns,
        )
    ).rowcount
    if not went_live:
        uow.session.execute(
            update(charge_attempts)
            .where(charge_attempts.c.id == attempt["id"], charge_attempts.c.provider_ref.is_(None))
            .values(expires_at=expires, updated_at=now, **columns)
        )
        return
    uow.session.execute(
        update(payments)
        .where(
            payments.c.id == attempt["payment_id"],
            payments.c.method_attempt == attempt["attempt"],
            payments.c.status == states.PaymentStatus.PENDING.value,
        )
        .values(expires_at=expires, updated_at=now, **columns)
    )


def charge_now(uow, settings: Settings, attempt_id: str | None) -> None:
    """Try a just-stored attempt's charge at once, after its transaction committed, so the QR is
    usually there when the citizen looks; whatever happens, the sweep retries it."""
    if attempt_id is None:
        return
    try:
        run_charge(uow, settings, attempt_id)
    except Exception:  # e.g. a lost connection: the sweep retries this work item
        _log.exception("charge attempt left to the sweep", extra={"attempt": attempt_id})
        uow.rollback()
