"""Payment use cases over the unit of work; the money rules live in ``domain``.

Every use case that changes a payment first locks its row (``SELECT … FOR UPDATE`` on PostgreSQL;
SQLite serialises writers), decides with the pure domain rules, then writes the payment, its
journal lines and its outbox events in the caller's one transaction.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import and_, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from mpp_chassis.db import next_in_sequence
from mpp_contracts.errors import BadRequest, Conflict, Forbidden, NotFound, ValidationFailed
from mpp_contracts.mallday import day_window, mall_day
from mpp_payment.adapters import providers as adapters
from mpp_payment.adapters.http import ProviderHttp
from mpp_payment.adapters.tables import (
    catalogue,
    journal_lines,
    notifications,
    payments,
    receipt_sequences,
    refunds,
)
from mpp_payment.domain import ledger, numbers, qris, settlement, states
from mpp_payment.domain.errors import InvalidTransition, RefundExceedsPaid

MAX_IDEMPOTENCY_KEY = 200  # as the gateway accepts and docs/api-guide.md promises


@dataclass(frozen=True)
class Settings:
    mall_code: str = "MPP"
    mall_timezone: str = "Asia/Jakarta"
    merchant_name: str = "MAL PELAYANAN PUBLIK"
    merchant_city: str = "JAKARTA"
    nmid: str = "ID1020000000001"
    merchant_pan: str = "9360000000000000001"
    qris_expiry_minutes: int = 30
    va_expiry_minutes: int = 24 * 60
    ewallet_expiry_minutes: int = 15
    simulator_secret: str = "simulator-secret"
    provider: str = "simulator"
    default_method: str = "qris"
    va_prefix: str = "8808"
    midtrans_server_key: str = field(default="", repr=False)
    midtrans_base_url: str = "https://api.sandbox.midtrans.com"
    xendit_secret_key: str = field(default="", repr=False)
    xendit_callback_token: str = field(default="", repr=False)
    xendit_base_url: str = "https://api.xendit.co"
    http_timeout_seconds: float = 10.0
    http_retries: int = 2

    @property
    def expiry_minutes(self) -> dict[str, int]:
        return {
            "qris": self.qris_expiry_minutes,
            "virtual_account": self.va_expiry_minutes,
            "ewallet": self.ewallet_expiry_minutes,
        }


def now_utc() -> datetime:
    return datetime.now(UTC)


def _iso(value):
    return value.isoformat() if value is not None else None


def make_provider(
    name: str, settings: Settings, session, *, transport=None, now: datetime | None = None
) -> adapters.PaymentProvider:
    """The adapter for ``name``; secrets come from settings, which read them from the
    environment only. A provider without its secret still builds, and fails closed."""
    if name == "simulator":
        return adapters.SimulatorProvider(
            session, settings.simulator_secret, va_prefix=settings.va_prefix, now=now
        )

    def http(base_url: str, username: str) -> ProviderHttp:
        return ProviderHttp(
            base_url,
            username=username,
            transport=transport,
            read_timeout=settings.http_timeout_seconds,
            retries=settings.http_retries,
        )

    if name == "midtrans":
        return adapters.MidtransProvider(
            http(settings.midtrans_base_url, settings.midtrans_server_key),
            settings.midtrans_server_key,
        )
    if name == "xendit":
        return adapters.XenditProvider(
            http(settings.xendit_base_url, settings.xendit_secret_key),
            settings.xendit_callback_token,
        )
    raise NotFound("PROVIDER_NOT_FOUND", f"unknown payment provider {name}")


# -- catalogue copy ----------------------------------------------------------------------------


def upsert_service(uow, payload: dict) -> None:
    """Apply a catalogue event to the copy unless the copy already holds a newer (or the same)
    version: consumers run concurrently and relays of several replicas publish in any order, so
    a stale fee must never win. An event without a version (from before versions) only
    replaces a copy without one."""
    version = payload.get("version")
    values = {
        "agency_id": payload["agency_id"],
        "code": payload["code"],
        "name": payload["name"],
        "fee_idr": payload["fee_idr"],
        "active": payload.get("active", True),
        "version": version,
    }
    older = catalogue.c.version.is_(None)
    if version is not None:
        older = or_(older, catalogue.c.version < version)
    change = update(catalogue).where(catalogue.c.id == payload["service_id"], older)
    if uow.session.execute(change.values(**values)).rowcount:
        return
    known = select(catalogue.c.id).where(catalogue.c.id == payload["service_id"])
    if uow.session.execute(known).first() is not None:
        return  # the copy is newer already
    try:
        with uow.session.begin_nested():
            uow.session.execute(insert(catalogue).values(id=payload["service_id"], **values))
    except IntegrityError:  # another event of this service inserted it meanwhile
        uow.session.execute(change.values(**values))


# -- invoices ----------------------------------------------------------------------------------


def _event_payload(row) -> dict:
    return {
        "payment_id": row["id"],
        "ticket_id": row["ticket_id"],
        "agency_id": row["agency_id"],
        "service_id": row["service_id"],
        "amount_idr": row["amount_idr"],
        "status": row["status"],
        "method": row["method"],
        "provider": row["provider"],
    }


def order_id(row: dict) -> str:
    """The id a provider knows a charge by: the payment id, plus the attempt for real providers
    (they refuse a reused order id, so a change of method needs a new one)."""
    if row["provider"] == "simulator":
        return row["id"]
    return f"{row['id']}-{row['method_attempt']}"


def _payment_id_of(order: str) -> str:
    return order[:36]


def _charge(provider, settings: Settings, row: dict) -> adapters.Charge:
    minutes = settings.expiry_minutes[row["method"]]
    return provider.charge(
        adapters.ChargeRequest(
            payment_id=row["id"],
            order_id=order_id(row),
            amount_idr=row["amount_idr"],
            method=row["method"],
            expires_at=row["expires_at"],
            minutes=minutes,
            description=f"{row['service_code'] or 'layanan'} {row['ticket_number'] or ''}".strip(),
            qris_fields={
                "merchant_name": settings.merchant_name,
                "merchant_city": settings.merchant_city,
                "nmid": settings.nmid,
                "merchant_pan": settings.merchant_pan,
            },
            bill_number=(row["ticket_number"] or "").replace("-", "") + row["id"][:8].upper(),
        )
    )


def _charge_columns(charge: adapters.Charge) -> dict:
    return {
        "provider_ref": charge.provider_ref,
        "qris_payload": charge.qris_payload,
        "va_number": charge.va_number,
        "ewallet_ref": charge.ewallet_ref,
        "checkout_url": charge.checkout_url,
    }


def invoice_amount(uow, ticket: dict) -> int:
    """What a completed ticket owes (0: nothing): the fee in force when it was completed — the
    service is rendered then, and a fee changed while the citizen waited applies to them
    (docs/payment-rules.md). It is read from our copy of the catalogue (kept from ``service_*``
    events, never overwritten by an older version); the fee the ticket event carries (the fee
    the ticket was issued with) is used only when our copy has not arrived yet."""
    fee = uow.session.execute(
        select(catalogue.c.fee_idr).where(catalogue.c.id == ticket["service_id"])
    ).scalar_one_or_none()
    return ticket["fee_idr"] if fee is None else fee


def payment_not_required(uow, ticket: dict) -> None:
    """Record the verdict that a completed ticket owes nothing, as the fact the rating service
    invites from (``payment_not_required``). Nothing else is stored: no invoice, no ledger."""
    uow.add_event(
        "payment_not_required",
        {
            "ticket_id": ticket["ticket_id"],
            "agency_id": ticket["agency_id"],
            "service_id": ticket["service_id"],
        },
    )


def open_invoice(
    uow, settings: Settings, ticket: dict, amount: int, *, provider=None
) -> dict | None:
    """Open the one invoice of a completed ticket whose service has a fee: ``amount``, from
    :func:`invoice_amount` (the caller skips free services without touching the database).
    A second invoice for the same ticket is refused by a unique key.
    """
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
        "expires_at": numbers.expires_at(created, method, settings.expiry_minutes),
        "refunded_idr": 0,
        "created_at": created,
        "updated_at": created,
    }
    provider = provider or make_provider(settings.provider, settings, uow.session)
    row.update(_charge_columns(_charge(provider, settings, row)))
    try:
        with uow.session.begin_nested():
            uow.session.execute(insert(payments).values(**row))
    except IntegrityError:
        return None  # a concurrent delivery opened it first
    uow.add_event("payment_requested", _event_payload(row))
    return row


def choose_method(uow, settings: Settings, payment_id: str, method: str, *, provider=None) -> dict:
    """The citizen switches a pending invoice to another method: a new charge attempt with a new
    order id and a new deadline. Choosing the current method again changes nothing."""
    if method not in adapters.METHODS:
        raise ValidationFailed(
            "VALIDATION_FAILED", "invalid fields", {"method": [f"one of {adapters.METHODS}"]}
        )
    row = _load(uow.session, payment_id, lock=True)
    if row["method"] == method:
        return payment_view(row)
    if row["status"] != states.PaymentStatus.PENDING.value:
        raise Conflict("INVALID_TRANSITION", f"a {row['status']} payment cannot change method")
    now = now_utc()
    row.update(
        method=method,
        method_attempt=row["method_attempt"] + 1,
        expires_at=numbers.expires_at(now, method, settings.expiry_minutes),
    )
    provider = provider or make_provider(row["provider"], settings, uow.session)
    columns = _charge_columns(_charge(provider, settings, row))
    uow.session.execute(
        update(payments)
        .where(payments.c.id == payment_id)
        .values(
            method=method,
            method_attempt=row["method_attempt"],
            expires_at=row["expires_at"],
            updated_at=now,
            **columns,
        )
    )
    return payment_view({**row, **columns})


def _load(session, payment_id: str, *, lock: bool = False) -> dict:
    query = select(payments).where(payments.c.id == payment_id)
    if lock:
        query = query.with_for_update()
    row = session.execute(query).mappings().first()
    if row is None:
        raise NotFound("PAYMENT_NOT_FOUND", "no such payment")
    return dict(row)


def payment_view(row: dict) -> dict:
    return {
        "id": row["id"],
        "ticket_id": row["ticket_id"],
        "ticket_number": row["ticket_number"],
        "agency_id": row["agency_id"],
        "service_id": row["service_id"],
        "amount_idr": row["amount_idr"],
        "status": row["status"],
        "method": row["method"],
        "provider": row["provider"],
        "qris": (
            {
                "payload": row["qris_payload"],
                "image_png": f"/v1/payments/{row['id']}/qris.png",
                "image_svg": f"/v1/payments/{row['id']}/qris.svg",
            }
            if row["qris_payload"]
            else None
        ),
        "va_number": row["va_number"],
        "ewallet_ref": row.get("ewallet_ref"),
        "checkout_url": row.get("checkout_url"),
        "expires_at": _iso(row["expires_at"]),
        "paid_at": _iso(row["paid_at"]),
        "refunded_idr": row["refunded_idr"],
        "flag": row["flag"],
        "receipt": (
            {
                "number": row["receipt_number"],
                "paid_at": _iso(row["paid_at"]),
                "amount_idr": row["paid_amount_idr"],
            }
            if row["receipt_number"]
            else None
        ),
    }


def get_payment(uow, payment_id: str) -> dict:
    return payment_view(_load(uow.session, payment_id))


def get_ticket_payment(uow, ticket_id: str) -> dict:
    row = (
        uow.session.execute(select(payments).where(payments.c.ticket_id == ticket_id))
        .mappings()
        .first()
    )
    if row is None:
        raise NotFound("PAYMENT_NOT_FOUND", "this ticket has no invoice (yet)")
    return payment_view(dict(row))


def qris_image(uow, payment_id: str, fmt: str) -> dict:
    """The QR image of a QRIS invoice: SVG as text, PNG as base64 (RPC carries JSON only)."""
    import base64

    row = _load(uow.session, payment_id)
    if not row["qris_payload"]:
        raise NotFound("NO_QRIS", "this payment has no QRIS payload")
    if fmt == "svg":
        return {"content_type": "image/svg+xml", "svg": qris.qr_svg(row["qris_payload"])}
    png = qris.qr_png(row["qris_payload"])
    return {"content_type": "image/png", "png_base64": base64.b64encode(png).decode()}


# -- provider notifications --------------------------------------------------------------------


def _simulator_enabled(settings: Settings) -> None:
    """The simulator is a test double: it exists only where it is the configured provider, so a
    mall configured for a real provider has no free "pay" button and no webhook signed with the
    simulator's (local, well-known) secret."""
    if settings.provider != "simulator":
        raise NotFound("SIMULATOR_DISABLED", "the payment simulator is not the configured provider")


def simulator_notification(
    uow, settings: Settings, actor: dict | None, payment_id: str
) -> tuple[bytes, str]:
    """The citizen pays at the simulated provider: its own book records the money, and it
    returns the signed notification it will send to the mall's webhook. Only an agency_admin of
    the invoice's agency (or the mall admin) may press the button: a citizen never can."""
    _simulator_enabled(settings)
    row = _load(uow.session, payment_id)
    _check_agency(actor, row["agency_id"], "the simulator pays for an agency administrator only")
    if row["provider"] != "simulator":
        raise Conflict("NOT_SIMULATED", "this payment is not handled by the simulator")
    provider = make_provider("simulator", settings, uow.session)
    amount = provider.record_paid(payment_id, now_utc())
    return provider.notification(payment_id, "paid", amount, "SIM-" + uuid.uuid4().hex[:12].upper())


def _seen(uow, provider: str, key: str, now) -> bool:
    """True if this verified notice was stored before; its replay is counted on that one row."""
    replayed = uow.session.execute(
        update(notifications)
        .where(notifications.c.provider == provider, notifications.c.notice_key == key)
        .values(replays=notifications.c.replays + 1, last_received_at=now)
    ).rowcount
    return bool(replayed)


def _record(
    uow, provider: str, payment_id: str | None, key: str, body: str, outcome: str, now
) -> None:
    """Store a verified notice once (unique on provider + key). The payment row is locked, so
    a concurrent twin of this notice usually waits and then finds it in :func:`_seen`; where
    the lock is not taken (SQLite), the unique index turns the twin's insert into a no-op."""
    try:
        with uow.session.begin_nested():
            uow.session.execute(
                insert(notifications).values(
                    provider=provider,
                    payment_id=payment_id,
                    notice_key=key,
                    body=body,
                    outcome=outcome,
                    received_at=now,
                    replays=0,
                    last_received_at=now,
                )
            )
    except IntegrityError:
        _seen(uow, provider, key, now)


def handle_notification(
    uow, settings: Settings, provider_name: str, headers: dict, body: str, *, provider=None
) -> dict:
    """Apply one provider notification: authenticated first, then decided by the domain rules.

    Duplicates change nothing; an out-of-order notice (``expire`` after ``settlement``) leaves the
    newer fact standing and is flagged when money is involved; a "paid" after expiry is accepted
    and flagged; an amount that differs from the invoice is refused (nothing applied) and flagged.
    Every verified notice is kept once in ``provider_notifications`` with its outcome; a replay
    of the same fact (same provider, order, verified status and amount) answers ``duplicate`` and
    only counts on that row, so replays cannot grow the table.
    """
    if provider_name not in adapters.PROVIDERS:
        raise NotFound("PROVIDER_NOT_FOUND", f"unknown payment provider {provider_name}")
    if provider_name == "simulator":
        _simulator_enabled(settings)
    provider = provider or make_provider(provider_name, settings, uow.session)
    note = provider.read_notification(headers, body.encode())  # may ask the provider's API
    payment_id = _payment_id_of(note.order_id)
    row = _load(uow.session, payment_id, lock=True)
    if row["provider"] != provider_name:
        raise Conflict("PROVIDER_MISMATCH", "this payment is not handled by that provider")
    now = now_utc()
    key = note.key(provider_name)
    if _seen(uow, provider_name, key, now):
        return {"payment_id": payment_id, "result": "duplicate", "status": row["status"]}
    kind = note.kind
    if kind == "paid":
        amount = note.amount_idr if note.amount_idr is not None else -1
        outcome = states.apply_paid_notification(
            row["status"], invoice_amount=row["amount_idr"], paid_amount=max(amount, 0)
        )
    elif kind in ("expired", "cancelled", "failed"):
        outcome = states.apply_closing_notification(row["status"], kind)
    else:  # pending, or a refund we asked for ourselves: informative only
        _record(uow, provider_name, payment_id, key, body, f"noted_{kind}", now)
        return {"payment_id": payment_id, "result": "noted", "status": row["status"]}

    if outcome.changed:
        values = {"status": outcome.new_status.value, "updated_at": now}
        if kind == "paid":
            values.update(
                paid_at=now,
                paid_amount_idr=note.amount_idr,
                receipt_number=_receipt_number(uow.session, settings, now),
                provider_ref=note.provider_ref or row["provider_ref"],
            )
            if outcome.flag:
                values["flag"] = outcome.flag
        else:
            values["closed_at"] = now
        # conditional on the status we read: even without a row lock exactly one writer wins
        won = uow.session.execute(
            update(payments)
            .where(payments.c.id == payment_id, payments.c.status == row["status"])
            .values(**values)
        ).rowcount
        if won:
            row.update(values)
            _record(uow, provider_name, payment_id, key, body, outcome.flag or "applied", now)
            if kind == "paid":
                _journal(
                    uow,
                    ledger.entries_for_payment(
                        payment_id, row["agency_id"], row["provider"], note.amount_idr, now
                    ),
                    row["agency_id"],
                )
                uow.add_event("payment_succeeded", _event_payload(row))
            else:
                uow.add_event(
                    "payment_expired" if kind == "expired" else "payment_failed",
                    _event_payload(row),
                )
            if outcome.flag:
                uow.add_event("payment_flagged", {**_event_payload(row), "flag": outcome.flag})
            return {
                "payment_id": payment_id,
                "result": "applied",
                "status": row["status"],
                "flag": outcome.flag,
            }
    elif outcome.flag:
        _record(uow, provider_name, payment_id, key, body, outcome.flag, now)
        if row["flag"] != outcome.flag:  # a repeated wrong notice is not a new alert
            uow.session.execute(
                update(payments)
                .where(payments.c.id == payment_id)
                .values(flag=outcome.flag, updated_at=now)
            )
            uow.add_event("payment_flagged", {**_event_payload(row), "flag": outcome.flag})
        result = "refused" if outcome.flag == states.FLAG_AMOUNT_MISMATCH else "flagged"
        return {
            "payment_id": payment_id,
            "result": result,
            "status": row["status"],
            "flag": outcome.flag,
        }
    _record(uow, provider_name, payment_id, key, body, "duplicate", now)
    return {"payment_id": payment_id, "result": "duplicate", "status": row["status"]}


def _receipt_number(session, settings: Settings, now: datetime) -> str:
    """Receipt numbers restart every mall-local day, drawn from an atomic per-day sequence."""
    day = mall_day(now, ZoneInfo(settings.mall_timezone))
    seq = next_in_sequence(session, receipt_sequences, {"day": day})
    return numbers.receipt_number(settings.mall_code, day, seq)


def _journal(uow, entries, agency_id: str) -> None:
    for entry in entries:
        entry_id = str(uuid.uuid4())
        for line in entry.lines:
            uow.session.execute(
                insert(journal_lines).values(
                    entry_id=entry_id,
                    account=line.account,
                    agency_id=agency_id,
                    debit_idr=line.debit,
                    credit_idr=line.credit,
                    kind=entry.metadata["kind"],
                    reference=entry.reference,
                    memo=entry.memo[:120],
                    occurred_at=entry.occurred_at,
                )
            )


# -- expiry --------------------------------------------------------------------------------------


def expire_due(uow, settings: Settings, now: datetime | None = None, limit: int = 200) -> int:
    """Expire pending invoices past their deadline (run by a timer on every replica: the
    conditional update lets exactly one replica expire each invoice and emit its event)."""
    now = now or now_utc()
    due = (
        uow.session.execute(
            select(payments)
            .where(payments.c.status == "pending", payments.c.expires_at <= now)
            .order_by(payments.c.expires_at)
            .limit(limit)
        )
        .mappings()
        .all()
    )
    expired = 0
    for row in due:
        target = states.transition(row["status"], states.PaymentStatus.EXPIRED)
        won = uow.session.execute(
            update(payments)
            .where(payments.c.id == row["id"], payments.c.status == "pending")
            .values(status=target.value, closed_at=now, updated_at=now)
        ).rowcount
        if won:
            expired += 1
            uow.add_event("payment_expired", _event_payload({**row, "status": target.value}))
    return expired


# -- refunds -------------------------------------------------------------------------------------


def _request_hash(payment_id: str, data: dict) -> str:
    canonical = json.dumps(
        {"payment_id": payment_id, "amount_idr": data["amount_idr"], "reason": data.get("reason")},
        sort_keys=True,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def _check_agency(
    actor: dict | None, agency_id: str, anonymous: str = "refunds need an agency administrator"
) -> None:
    if actor is None:
        raise Forbidden("FORBIDDEN", anonymous)
    if actor.get("role") == "mall_admin":
        return
    if actor.get("role") != "agency_admin" or actor.get("agency_id") != agency_id:
        raise Forbidden("WRONG_AGENCY", "this payment belongs to another agency")


def _refund_view(refund: dict, payment: dict) -> dict:
    return {
        "id": refund["id"],
        "payment_id": refund["payment_id"],
        "amount_idr": refund["amount_idr"],
        "reason": refund["reason"],
        "status": refund["status"],
        "provider_ref": refund["provider_ref"],
        "created_at": _iso(refund["created_at"]),
        "payment_status": payment["status"],
        "refunded_total_idr": payment["refunded_idr"],
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
    row = _load(uow.session, payment_id, lock=True)
    _check_agency(actor, row["agency_id"])
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
    provider = provider or make_provider(row["provider"], settings, uow.session)
    provider_key = hashlib.sha256(f"{scope}\n{idempotency_key}".encode()).hexdigest()[:40]
    done = provider.refund(order_id(row), row["provider_ref"], amount, provider_key)
    now = now_utc()
    record = {
        "id": str(uuid.uuid4()),
        "payment_id": payment_id,
        "agency_id": row["agency_id"],
        "amount_idr": amount,
        "reason": data.get("reason"),
        "key_scope": scope,
        "idempotency_key": idempotency_key,
        "request_hash": digest,
        "status": done.status,
        "provider_ref": done.provider_ref,
        "actor_key_id": (actor or {}).get("key_id"),
        "created_at": now,
    }
    uow.session.execute(insert(refunds).values(**record))
    total = row["refunded_idr"] + amount
    uow.session.execute(
        update(payments)
        .where(payments.c.id == payment_id)
        .values(status=target.value, refunded_idr=total, updated_at=now)
    )
    row.update(status=target.value, refunded_idr=total)
    _journal(
        uow,
        ledger.entries_for_refund(
            record["id"], payment_id, row["agency_id"], row["provider"], amount, now
        ),
        row["agency_id"],
    )
    uow.add_event(
        "payment_refunded",
        {
            **_event_payload(row),
            "refund_id": record["id"],
            "refund_amount_idr": amount,
            "refunded_total_idr": total,
        },
    )
    return _refund_view(record, row)


# -- settlement and reconciliation --------------------------------------------------------------


def _day_window(settings: Settings, day: date) -> tuple[datetime, datetime]:
    start, end = day_window(day, ZoneInfo(settings.mall_timezone))
    return start.astimezone(UTC), end.astimezone(UTC)


def _parse_day(text: str | None, settings: Settings) -> date:
    if not text:
        return mall_day(now_utc(), ZoneInfo(settings.mall_timezone))
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ValidationFailed(
            "VALIDATION_FAILED", "invalid fields", {"date": ["YYYY-MM-DD"]}
        ) from None


def settlement_report(
    uow, settings: Settings, actor: dict | None, agency_id: str, day_text: str | None, fmt: str
) -> dict:
    """The agency's report for one mall-local day (cash basis, ``domain.settlement``), with the
    journal's movement on the agency's payable account for the same window as a cross-check."""
    _check_agency(actor, agency_id)
    day = _parse_day(day_text, settings)
    start, end = _day_window(settings, day)
    day_refunds = (
        uow.session.execute(
            select(refunds).where(
                refunds.c.agency_id == agency_id,
                refunds.c.created_at >= start,
                refunds.c.created_at < end,
            )
        )
        .mappings()
        .all()
    )
    refunded_ids = {r["payment_id"] for r in day_refunds}
    rows = (
        uow.session.execute(
            select(payments).where(
                payments.c.agency_id == agency_id,
                or_(
                    and_(payments.c.paid_at >= start, payments.c.paid_at < end),
                    payments.c.id.in_(refunded_ids) if refunded_ids else False,
                ),
            )
        )
        .mappings()
        .all()
    )
    report = settlement.settlement_report(
        agency_id,
        day,
        settings.mall_timezone,
        [
            settlement.PaymentRecord(
                payment_id=r["id"],
                agency_id=r["agency_id"],
                ticket_number=r["ticket_number"] or "",
                service_code=r["service_code"] or "",
                method=r["method"],
                amount=r["paid_amount_idr"] or 0,
                paid_at=r["paid_at"],
                receipt_number=r["receipt_number"],
            )
            for r in rows
        ],
        [
            settlement.RefundRecord(
                r["id"], r["payment_id"], r["agency_id"], r["amount_idr"], r["created_at"]
            )
            for r in day_refunds
        ],
    )
    if fmt == "csv":
        return {"content_type": "text/csv", "csv": settlement.report_csv(report)}
    account = ledger.agency_payable(agency_id)
    movement = uow.session.execute(
        select(
            func.coalesce(func.sum(journal_lines.c.credit_idr - journal_lines.c.debit_idr), 0)
        ).where(
            journal_lines.c.account == account,
            journal_lines.c.occurred_at >= start,
            journal_lines.c.occurred_at < end,
        )
    ).scalar_one()
    return {
        "agency_id": agency_id,
        "date": day.isoformat(),
        "timezone": settings.mall_timezone,
        "count": report.count,
        "gross_idr": report.gross,
        "refunds_idr": report.refunds,
        "net_idr": report.net,
        "ledger": {
            "account": account,
            "net_idr": int(movement),
            "balanced": movement == report.net,
        },
        "lines": [
            {
                "payment_id": line.payment_id,
                "ticket_number": line.ticket_number,
                "service_code": line.service_code,
                "method": line.method,
                "paid_idr": line.paid_amount,
                "refunded_idr": line.refunded_amount,
                "net_idr": line.net_amount,
                "paid_at": _iso(line.paid_at),
                "receipt_number": line.receipt_number,
            }
            for line in report.lines
        ],
    }


def reconciliation(
    uow,
    settings: Settings,
    actor: dict | None,
    agency_id: str,
    day_text: str | None,
    *,
    provider_factory=None,
) -> dict:
    """Our view of the agency's invoices opened that day against each provider's own view."""
    _check_agency(actor, agency_id)
    day = _parse_day(day_text, settings)
    start, end = _day_window(settings, day)
    rows = (
        uow.session.execute(
            select(payments).where(
                payments.c.agency_id == agency_id,
                payments.c.created_at >= start,
                payments.c.created_at < end,
            )
        )
        .mappings()
        .all()
    )
    now = now_utc()
    factory = provider_factory or (lambda name: make_provider(name, settings, uow.session, now=now))
    cache: dict[str, adapters.PaymentProvider] = {}
    ours, theirs = {}, {}
    for r in rows:
        provider = cache.setdefault(r["provider"], factory(r["provider"]))
        status = r["status"]
        if not provider.tracks_refunds and status in ("partially_refunded", "refunded"):
            status = "paid"
        amount = r["paid_amount_idr"] if r["paid_amount_idr"] is not None else r["amount_idr"]
        ours[r["id"]] = (status, amount)
        view = provider.view(order_id(dict(r)), r["provider_ref"])
        if view is not None:
            theirs[r["id"]] = view
    mismatches = settlement.reconcile(ours, theirs)
    return {
        "agency_id": agency_id,
        "date": day.isoformat(),
        "checked": len(rows),
        "mismatches": [
            {
                "payment_id": m.key,
                "kind": m.kind,
                "ours": {"status": m.ours[0], "amount_idr": m.ours[1]} if m.ours else None,
                "provider": (
                    {"status": m.provider[0], "amount_idr": m.provider[1]} if m.provider else None
                ),
            }
            for m in mismatches
        ],
    }
