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

import functools
import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import bindparam, func, insert, or_, select, update

from mpp_chassis.prepared import PREPARE
from mpp_contracts.errors import Conflict, ValidationFailed
from mpp_payment.adapters import providers as adapters
from mpp_payment.adapters.tables import charge_attempts, payments
from mpp_payment.domain import attempts, numbers, states
from mpp_payment.domain.attempts import AttemptStatus
from mpp_payment.usecases import (
    Settings,
    event_payload,
    get_payment,
    insert_unless_present,
    load_payment,
    make_provider,
    now_utc,
    payment_view,
)
from mpp_payment.verdicts import completion_facts

_log = logging.getLogger(__name__)

LEASE_SECONDS = 60  # a claimed charge is tried again by another worker only after this
METHOD_COLUMNS = ("provider_ref", "qris_payload", "va_number", "ewallet_ref", "checkout_url")


@dataclass(frozen=True)
class NewCharge:
    """An attempt just stored, waiting for its charge, with the invoice fields its request needs
    (id, service code, ticket number): the charge made right after the commit
    (:func:`charge_now`) reads neither back. The attempt is stored already claimed (one try,
    leased for ``LEASE_SECONDS``), so that charge needs no claim of its own; the sweep takes it
    only if the worker died before it stored the answer and the lease lapsed."""

    attempt_id: str
    invoice: dict
    attempt: dict  # the attempt as stored: born claimed by the worker that stored it


def _attempt_row(row: dict, number: int, now: datetime) -> dict:
    """A new attempt, claimed by the worker storing it: it charges it right after its commit
    (:func:`charge_now`), as if its claim (:data:`_CLAIM`) had been committed with it."""
    return {
        "id": str(uuid.uuid4()),
        "payment_id": row["id"],
        "attempt": number,
        "order_id": attempts.order_id(row["id"], number),
        "provider": row["provider"],
        "method": row["method"],
        "status": AttemptStatus.CREATING.value,
        "amount_idr": row["amount_idr"],
        "overpaid_idr": 0,
        "overpaid_refunded_idr": 0,
        "tries": 1,
        "next_try_at": now + timedelta(seconds=LEASE_SECONDS),
        "created_at": now,
        "updated_at": now,
    }


@functools.cache
def _insert_values(table, keys: tuple[str, ...]):
    """``INSERT INTO table`` with a bound parameter per key, built once: the form a CTE needs
    (:meth:`UnitOfWork.execute_with_event`)."""
    return insert(table).values({k: bindparam(k, type_=table.c[k].type) for k in keys})


def _new_attempt(uow, row: dict, number: int, now: datetime) -> NewCharge:
    attempt = _attempt_row(row, number, now)
    uow.session.execute(_insert_values(charge_attempts, tuple(attempt)), attempt)
    return NewCharge(attempt["id"], row, attempt)


def open_invoice(uow, settings: Settings, ticket: dict, amount: int) -> NewCharge | None:
    """Store the one invoice of a completed ticket whose service has a fee (``amount``, from
    :func:`~mpp_payment.verdicts.invoice_amount`) and its first charge attempt; that attempt, for
    :func:`charge_now` (None: the ticket has its invoice already). A second invoice for the same
    ticket is refused by a unique key.

    Two statements on PostgreSQL: the invoice (``ON CONFLICT DO NOTHING``: no read first, no
    savepoint), then the attempt carrying ``payment_requested`` (a data-modifying CTE)."""
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
        # the code's holder reads the invoice with it (domain.access); None from an older queue
        "access_digest": ticket.get("access_digest"),
        # passed on with payment_succeeded: the rating service invites from it (decision 0015)
        **completion_facts(ticket),
        "created_at": created,
        "updated_at": created,
    }
    stored = uow.session.execute(insert_unless_present(payments, tuple(row), "id"), row).first()
    if stored is None:
        return None  # the ticket has its invoice (a redelivery, or a concurrent one won)
    attempt = _attempt_row(row, 1, created)
    uow.execute_with_event(
        _insert_values(charge_attempts, tuple(attempt)),
        attempt,
        "payment_requested",
        event_payload(row),
    )
    return NewCharge(attempt["id"], row, attempt)


def choose_method(
    uow, settings: Settings, payment_id: str, method: str
) -> tuple[dict, NewCharge | None]:
    """The citizen switches a pending invoice to another method: the current attempt is
    superseded (its charge stays payable at the provider until it lapses; money on it is still
    recorded) and a new attempt waits for its charge. Choosing the current method again changes
    nothing. Returns the invoice's view and the new attempt (for :func:`charge_now`)."""
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
    attempt = _new_attempt(uow, row, row["method_attempt"], now)
    uow.session.execute(
        update(payments)
        .where(payments.c.id == payment_id)
        .values({k: row[k] for k in ("method", "method_attempt", "expires_at", "updated_at")})
        .values(dict.fromkeys(METHOD_COLUMNS))
    )
    return payment_view(row, "preparing"), attempt


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


_CLAIM = (
    update(charge_attempts)
    .where(
        charge_attempts.c.id == bindparam("attempt_id"),
        charge_attempts.c.status == AttemptStatus.CREATING.value,
        or_(
            charge_attempts.c.next_try_at.is_(None),
            charge_attempts.c.next_try_at <= bindparam("now"),
        ),
    )
    .values(
        tries=charge_attempts.c.tries + 1,
        next_try_at=bindparam("lease"),
        updated_at=bindparam("now"),
    )
    .returning(*charge_attempts.columns)
)


def run_charge(uow, settings: Settings, attempt: str | NewCharge, *, provider=None) -> bool:
    """Make the provider charge of one waiting attempt (its id, or a :class:`NewCharge` just
    stored); True once its answer is stored.

    Two transactions, none open during the provider call: the claim (a lease, so replicas do not
    call at once; ``UPDATE … RETURNING`` the attempt), then the answer stored. An attempt just
    stored (:class:`NewCharge`) was stored claimed: one transaction, the answer's. The simulator's
    book lives in our database: it records the charge in that second transaction, so a worker
    killed before it committed leaves no order in the book, and the retry, with the same key,
    opens it. A failed call is noted on the attempt with its next try (doubling, at most 5 min)."""
    now = now_utc()
    if isinstance(attempt, NewCharge):  # stored claimed, with its invoice at hand
        attempt, row = dict(attempt.attempt), attempt.invoice
    else:
        claimed = (
            uow.session.execute(
                _CLAIM,
                {
                    "attempt_id": attempt,
                    "now": now,
                    "lease": now + timedelta(seconds=LEASE_SECONDS),
                },
            )
            .mappings()
            .first()
        )
        if claimed is None:
            uow.rollback()
            return False
        attempt = dict(claimed)
        row = load_payment(uow.session, attempt["payment_id"])
        uow.commit()  # the claim is kept; nothing is open while the provider is asked
    provider = provider or make_provider(attempt["provider"], settings, uow.session)
    try:
        charge = provider.charge(_request(settings, attempt, row, now))
    except Exception as exc:  # the work item records why and waits: never lost, never raised
        uow.rollback()
        _charge_failed(uow, attempt, exc)
        return False
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
    values = {
        "v_provider_ref": charge.provider_ref,
        "v_qris_payload": charge.qris_payload,
        "v_va_number": charge.va_number,
        "v_ewallet_ref": charge.ewallet_ref,
        "v_checkout_url": charge.checkout_url,
        "v_expires_at": expires,
        "v_updated_at": now,
        "attempt_id": attempt["id"],
    }
    shown = {**values, "invoice_id": attempt["payment_id"], "n": attempt["attempt"]}
    if uow.session.get_bind().dialect.name == "postgresql":  # one statement: two CTEs
        went_live = uow.session.execute(_GO_LIVE_AND_SHOW, shown).scalar_one()
    else:
        went_live = uow.session.execute(_GO_LIVE, values).rowcount
        if went_live:
            uow.session.execute(_SHOW_ON_INVOICE, shown)
    if not went_live:
        uow.session.execute(_KEEP_REFERENCE, values)


def _charge_values(table) -> dict:
    """``SET column = :v_column`` for the charge's columns, its deadline and ``updated_at``."""
    names = (*METHOD_COLUMNS, "expires_at", "updated_at")
    return {name: bindparam(f"v_{name}", type_=table.c[name].type) for name in names}


# storing a provider's answer, built once (values bound per execution)
_GO_LIVE = (
    update(charge_attempts)
    .where(
        charge_attempts.c.id == bindparam("attempt_id"),
        charge_attempts.c.status == AttemptStatus.CREATING.value,
    )
    .values(
        {
            **_charge_values(charge_attempts),
            "status": AttemptStatus.LIVE.value,
            "next_try_at": None,
            "last_error": None,
        }
    )
)
_KEEP_REFERENCE = (
    update(charge_attempts)
    .where(
        charge_attempts.c.id == bindparam("attempt_id"), charge_attempts.c.provider_ref.is_(None)
    )
    .values(_charge_values(charge_attempts))
)
_SHOW_ON_INVOICE = (
    update(payments)
    .where(
        payments.c.id == bindparam("invoice_id"),
        payments.c.method_attempt == bindparam("n"),
        payments.c.status == states.PaymentStatus.PENDING.value,
    )
    .values(_charge_values(payments))
)


def _go_live_and_show():
    """PostgreSQL: the attempt goes live and, only if it did, the invoice shows its charge; the
    answer is whether it went live."""
    live = _GO_LIVE.returning(charge_attempts.c.id).cte("live")
    shown = _SHOW_ON_INVOICE.where(select(live.c.id).exists()).returning(payments.c.id)
    both = select(select(func.count()).select_from(live).scalar_subquery())
    return both.add_cte(shown.cte("shown")).execution_options(**PREPARE)  # by key: planned once


_GO_LIVE_AND_SHOW = _go_live_and_show()


def charge_now(uow, settings: Settings, attempt: NewCharge | None) -> None:
    """Try a just-stored attempt's charge at once, after its transaction committed, so the QR is
    usually there when the citizen looks; whatever happens, the sweep retries it."""
    if attempt is None:
        return
    try:
        run_charge(uow, settings, attempt)
    except Exception:  # e.g. a lost connection: the sweep retries this work item
        _log.exception("charge attempt left to the sweep", extra={"attempt": attempt.attempt_id})
        uow.rollback()
