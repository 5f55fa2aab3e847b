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
    charge_attempts,
    journal_lines,
    notifications,
    payments,
    receipt_sequences,
    refunds,
)
from mpp_payment.domain import attempts, ledger, numbers, qris, settlement, states
from mpp_payment.domain.attempts import AttemptStatus
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


def event_payload(row) -> dict:
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


def invoice_amount(uow, ticket: dict) -> int:
    """What a completed ticket owes (0: nothing). The catalogue's fee (our copy, kept from
    ``service_*`` events); the fee carried by the ticket event is the queue's catalogue value at
    completion and is used only when our copy has not arrived yet."""
    fee = uow.session.execute(
        select(catalogue.c.fee_idr).where(catalogue.c.id == ticket["service_id"])
    ).scalar_one_or_none()
    return ticket["fee_idr"] if fee is None else fee


def load_payment(session, payment_id: str, *, lock: bool = False) -> dict:
    query = select(payments).where(payments.c.id == payment_id)
    if lock:
        query = query.with_for_update()
    row = session.execute(query).mappings().first()
    if row is None:
        raise NotFound("PAYMENT_NOT_FOUND", "no such payment")
    return dict(row)


def attempt_summary(session, row: dict) -> tuple[str, int]:
    """``(charge_status, overpaid_idr)``: "preparing" while the current attempt's charge is not
    made yet, else "ready"; and the money paid twice on this invoice and not yet refunded."""
    found = session.execute(
        select(
            charge_attempts.c.attempt,
            charge_attempts.c.status,
            charge_attempts.c.overpaid_idr - charge_attempts.c.overpaid_refunded_idr,
        ).where(charge_attempts.c.payment_id == row["id"])
    ).all()
    preparing = any(
        number == row["method_attempt"] and status == AttemptStatus.CREATING.value
        for number, status, _ in found
    )
    return ("preparing" if preparing else "ready"), sum(int(o) for _, _, o in found)


def payment_view(row: dict, charge_status: str = "ready", overpaid_idr: int = 0) -> dict:
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
        "attempt": row["method_attempt"],
        "charge_status": charge_status,
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
        "overpaid_idr": overpaid_idr,
        "flag": row.get("flag"),
        "receipt": (
            {
                "number": row["receipt_number"],
                "paid_at": _iso(row["paid_at"]),
                "amount_idr": row["paid_amount_idr"],
            }
            if row.get("receipt_number")
            else None
        ),
    }


def _view(session, row: dict) -> dict:
    return payment_view(row, *attempt_summary(session, row))


def get_payment(uow, payment_id: str) -> dict:
    return _view(uow.session, load_payment(uow.session, payment_id))


def get_ticket_payment(uow, ticket_id: str) -> dict:
    row = (
        uow.session.execute(select(payments).where(payments.c.ticket_id == ticket_id))
        .mappings()
        .first()
    )
    if row is None:
        raise NotFound("PAYMENT_NOT_FOUND", "this ticket has no invoice (yet)")
    return _view(uow.session, dict(row))


def qris_image(uow, payment_id: str, fmt: str) -> dict:
    """The QR image of a QRIS invoice: SVG as text, PNG as base64 (RPC carries JSON only)."""
    import base64

    row = load_payment(uow.session, payment_id)
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
    row = load_payment(uow.session, payment_id)
    _check_agency(actor, row["agency_id"], "the simulator pays for an agency administrator only")
    if row["provider"] != "simulator":
        raise Conflict("NOT_SIMULATED", "this payment is not handled by the simulator")
    provider = make_provider("simulator", settings, uow.session)
    order = attempts.order_id(payment_id, row["method_attempt"])  # the QR / VA shown now
    amount = provider.record_paid(order, now_utc())
    return provider.notification(order, "paid", amount, "SIM-" + uuid.uuid4().hex[:12].upper())


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


def _attempt(session, payment_id: str, number: int) -> dict | None:
    found = (
        session.execute(
            select(charge_attempts).where(
                charge_attempts.c.payment_id == payment_id, charge_attempts.c.attempt == number
            )
        )
        .mappings()
        .first()
    )
    return dict(found) if found else None


def handle_notification(
    uow, settings: Settings, provider_name: str, headers: dict, body: str, *, provider=None
) -> dict:
    """Apply one provider notification to its own charge attempt: authenticated first, then
    decided by the domain rules (``states`` for the invoice, ``attempts`` for the attempt).

    Duplicates change nothing; a stale closing notice of a superseded attempt closes that attempt
    only; money on an attempt settles a pending (or closed: flagged) invoice, and money on an
    invoice already paid is an overpayment (flagged, held in suspense); an amount that differs
    from the invoice is refused and flagged. Every verified notice is kept once in
    ``provider_notifications`` with its outcome; a replay only counts on that row.
    """
    if provider_name not in adapters.PROVIDERS:
        raise NotFound("PROVIDER_NOT_FOUND", f"unknown payment provider {provider_name}")
    if provider_name == "simulator":
        _simulator_enabled(settings)
    provider = provider or make_provider(provider_name, settings, uow.session)
    note = provider.read_notification(headers, body.encode())  # may ask the provider's API
    try:
        payment_id, number = attempts.parse_order_id(note.order_id)
    except ValueError:
        raise BadRequest("UNKNOWN_ORDER", "the notice names no charge attempt of ours") from None
    row = load_payment(uow.session, payment_id, lock=True)
    if row["provider"] != provider_name:
        raise Conflict("PROVIDER_MISMATCH", "this payment is not handled by that provider")
    attempt = _attempt(uow.session, payment_id, number or row["method_attempt"])
    if attempt is None:
        raise BadRequest("UNKNOWN_ORDER", "this payment has no such charge attempt")
    now = now_utc()
    key = note.key(provider_name)
    if _seen(uow, provider_name, key, now):
        return {"payment_id": payment_id, "result": "duplicate", "status": row["status"]}
    notice = _Notice(uow, settings, provider_name, row, attempt, note, key, body, now)
    if note.kind == "paid":
        return _apply_paid(notice)
    if note.kind in ("expired", "cancelled", "failed"):
        return _apply_closing(notice)
    # pending, or a refund we asked for ourselves: informative only
    return notice.answer("noted", f"noted_{note.kind}")


@dataclass
class _Notice:
    """One verified notice being applied: what the two ``_apply_*`` steps share."""

    uow: object
    settings: Settings
    provider: str
    row: dict
    attempt: dict
    note: adapters.Notification
    key: str
    body: str
    now: datetime

    def answer(self, result: str, outcome: str, flag: str | None = None) -> dict:
        _record(self.uow, self.provider, self.row["id"], self.key, self.body, outcome, self.now)
        answer = {"payment_id": self.row["id"], "result": result, "status": self.row["status"]}
        return {**answer, "flag": flag} if flag else answer

    def flagged(self, flag: str, result: str = "flagged") -> dict:
        """Raise ``flag`` on the invoice once (a repeated wrong notice is not a new alert)."""
        if self.row["flag"] != flag:
            self.uow.session.execute(
                update(payments)
                .where(payments.c.id == self.row["id"])
                .values(flag=flag, updated_at=self.now)
            )
            self.uow.add_event("payment_flagged", {**event_payload(self.row), "flag": flag})
            self.row["flag"] = flag
        return self.answer(result, flag, flag)


def _apply_paid(n: _Notice) -> dict:
    row, attempt, note, now = n.row, n.attempt, n.note, n.now
    amount = note.amount_idr if note.amount_idr is not None else -1
    decision = attempts.decide_paid(
        row["status"],
        attempt["status"],
        invoice_amount=row["amount_idr"],
        paid_amount=max(amount, 0),
    )
    if decision.kind == "mismatch":
        return n.flagged(decision.flag, "refused")
    if decision.kind == "duplicate":
        return n.answer("duplicate", "duplicate")
    money = {
        "status": AttemptStatus.PAID.value,
        "paid_at": now,
        "paid_amount_idr": note.amount_idr,
        "provider_ref": note.provider_ref or attempt["provider_ref"],
        "updated_at": now,
    }
    unpaid = charge_attempts.c.status != AttemptStatus.PAID.value
    this_attempt = update(charge_attempts).where(charge_attempts.c.id == attempt["id"], unpaid)
    if decision.kind == "overpayment":
        if n.uow.session.execute(this_attempt.values(overpaid_idr=amount, **money)).rowcount:
            _journal(
                n.uow,
                ledger.entries_for_overpayment(
                    attempt["order_id"], row["id"], row["agency_id"], row["provider"], amount, now
                ),
                row["agency_id"],
            )
            return n.flagged(decision.flag)
        return n.answer("duplicate", "duplicate")
    values = {
        "status": states.PaymentStatus.PAID.value,
        "updated_at": now,
        "paid_at": now,
        "paid_amount_idr": note.amount_idr,
        "paid_attempt": attempt["attempt"],
        "receipt_number": _receipt_number(n.uow.session, n.settings, now),
        "provider_ref": money["provider_ref"],
        "method": attempt["method"] or row["method"],
    }
    if decision.flag:
        values["flag"] = decision.flag
    # conditional on the status we read: even without a row lock exactly one writer wins
    won = n.uow.session.execute(
        update(payments)
        .where(payments.c.id == row["id"], payments.c.status == row["status"])
        .values(**values)
    ).rowcount
    if not won:
        return n.answer("duplicate", "duplicate")
    n.uow.session.execute(this_attempt.values(**money))
    n.uow.session.execute(  # the other charges stay payable at the provider: money on them
        update(charge_attempts)  # is an overpayment
        .where(
            charge_attempts.c.payment_id == row["id"],
            charge_attempts.c.id != attempt["id"],
            charge_attempts.c.status.in_([s.value for s in attempts.OPEN]),
        )
        .values(status=AttemptStatus.SUPERSEDED.value, updated_at=now)
    )
    row.update(values)
    _journal(
        n.uow,
        ledger.entries_for_payment(row["id"], row["agency_id"], row["provider"], amount, now),
        row["agency_id"],
    )
    n.uow.add_event("payment_succeeded", event_payload(row))
    if decision.flag:
        n.uow.add_event("payment_flagged", {**event_payload(row), "flag": decision.flag})
    return n.answer("applied", decision.flag or "applied", decision.flag)


def _apply_closing(n: _Notice) -> dict:
    row, attempt, kind, now = n.row, n.attempt, n.note.kind, n.now
    current = attempt["attempt"] == row["method_attempt"]
    decision = attempts.decide_closing(row["status"], attempt["status"], current=current)
    if decision.flag:
        return n.flagged(decision.flag)
    if decision.close_attempt:
        n.uow.session.execute(
            update(charge_attempts)
            .where(
                charge_attempts.c.id == attempt["id"],
                charge_attempts.c.status.in_([s.value for s in attempts.OPEN]),
            )
            .values(status=kind, updated_at=now)
        )
    if not decision.close_invoice:  # a stale notice of an old attempt, or a repeat
        return n.answer("noted" if decision.close_attempt else "duplicate", f"attempt_{kind}")
    target = states.apply_closing_notification(row["status"], kind).new_status
    values = {"status": target.value, "closed_at": now, "updated_at": now}
    won = n.uow.session.execute(
        update(payments)
        .where(payments.c.id == row["id"], payments.c.status == row["status"])
        .values(**values)
    ).rowcount
    if not won:
        return n.answer("duplicate", "duplicate")
    row.update(values)
    n.uow.add_event(
        "payment_expired" if kind == "expired" else "payment_failed", event_payload(row)
    )
    return n.answer("applied", "applied")


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
    conditional update lets exactly one replica expire each invoice and emit its event). An
    invoice whose charge is still being prepared (a provider outage) is not expired: its
    deadline starts when the charge is made."""
    now = now or now_utc()
    live = (
        select(charge_attempts.c.id)
        .where(
            charge_attempts.c.payment_id == payments.c.id,
            charge_attempts.c.attempt == payments.c.method_attempt,
            charge_attempts.c.status == AttemptStatus.LIVE.value,
        )
        .exists()
    )
    due = (
        uow.session.execute(
            select(payments)
            .where(payments.c.status == "pending", payments.c.expires_at <= now, live)
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
            uow.session.execute(
                update(charge_attempts)
                .where(
                    charge_attempts.c.payment_id == row["id"],
                    charge_attempts.c.attempt == row["method_attempt"],
                    charge_attempts.c.status == AttemptStatus.LIVE.value,
                )
                .values(status=AttemptStatus.EXPIRED.value, updated_at=now)
            )
            uow.add_event("payment_expired", event_payload({**row, "status": target.value}))
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
    paid_with = _attempt(uow.session, payment_id, row["paid_attempt"] or row["method_attempt"])
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
    _journal(
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
                refunds.c.overpayment_attempt.is_(None),  # an overpayment's: its own section
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
    movement = _movement(uow.session, account, start, end)
    over = _overpayments(uow.session, agency_id, start, end)
    over_in = sum(o["amount_idr"] for o in over if start <= o["paid_at"] < end)
    over_out = uow.session.execute(
        select(func.coalesce(func.sum(refunds.c.amount_idr), 0)).where(
            refunds.c.agency_id == agency_id,
            refunds.c.created_at >= start,
            refunds.c.created_at < end,
            refunds.c.overpayment_attempt.is_not(None),
        )
    ).scalar_one()
    suspense = ledger.overpayment_suspense(agency_id)
    suspense_movement = _movement(uow.session, suspense, start, end)
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
        # money paid twice: owed back to citizens, never part of the agency's net
        "overpayments_idr": over_in,
        "overpayment_refunds_idr": int(over_out),
        "suspense": {
            "account": suspense,
            "net_idr": int(suspense_movement),
            "balanced": suspense_movement == over_in - over_out,
        },
        "overpayments": [{**o, "paid_at": _iso(o["paid_at"])} for o in over],
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


def _movement(session, account: str, start: datetime, end: datetime) -> int:
    """Credits minus debits on ``account`` in ``[start, end)``."""
    return int(
        session.execute(
            select(
                func.coalesce(func.sum(journal_lines.c.credit_idr - journal_lines.c.debit_idr), 0)
            ).where(
                journal_lines.c.account == account,
                journal_lines.c.occurred_at >= start,
                journal_lines.c.occurred_at < end,
            )
        ).scalar_one()
    )


def _overpayments(session, agency_id: str, start: datetime, end: datetime, *, ids=None) -> list:
    """The agency's overpayments received in ``[start, end)`` or refunded then (or, with
    ``ids``, those of these payments), each with what is still owed back."""
    refunded_then = select(refunds.c.payment_id).where(
        refunds.c.agency_id == agency_id,
        refunds.c.created_at >= start,
        refunds.c.created_at < end,
        refunds.c.overpayment_attempt.is_not(None),
    )
    which = (
        charge_attempts.c.payment_id.in_(ids)
        if ids is not None
        else or_(
            and_(charge_attempts.c.paid_at >= start, charge_attempts.c.paid_at < end),
            charge_attempts.c.payment_id.in_(refunded_then),
        )
    )
    found = session.execute(
        select(charge_attempts, payments.c.ticket_number)
        .join(payments, payments.c.id == charge_attempts.c.payment_id)
        .where(payments.c.agency_id == agency_id, charge_attempts.c.overpaid_idr > 0, which)
        .order_by(charge_attempts.c.paid_at)
    ).mappings()
    return [
        {
            "payment_id": o["payment_id"],
            "order_id": o["order_id"],
            "attempt": o["attempt"],
            "ticket_number": o["ticket_number"],
            "method": o["method"],
            "amount_idr": o["overpaid_idr"],
            "refunded_idr": o["overpaid_refunded_idr"],
            "outstanding_idr": o["overpaid_idr"] - o["overpaid_refunded_idr"],
            "paid_at": o["paid_at"],
        }
        for o in found
    ]


def _money_status(payment: dict, attempt: dict, tracks_refunds: bool) -> str:
    """The status of the money an attempt received, as its provider would show it."""
    if attempt["attempt"] == payment["paid_attempt"]:
        status = payment["status"]
    else:
        back = attempt["overpaid_refunded_idr"]
        status = (
            "paid"
            if back == 0
            else "refunded"
            if back >= attempt["overpaid_idr"]
            else "partially_refunded"
        )
    if not tracks_refunds and status in ("partially_refunded", "refunded"):
        return "paid"
    return status


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
    by_id = {r["id"]: dict(r) for r in rows}
    tried = (
        uow.session.execute(
            select(charge_attempts)
            .where(charge_attempts.c.payment_id.in_(list(by_id)))
            .order_by(charge_attempts.c.payment_id, charge_attempts.c.attempt)
        )
        .mappings()
        .all()
        if by_id
        else []
    )
    cache: dict[str, adapters.PaymentProvider] = {}
    ours, theirs, attempt_of = {}, {}, {}
    for a in tried:  # every charge attempt, not only the current one
        if a["provider_ref"] is None:
            continue  # no charge made (yet): nothing to compare
        payment = by_id[a["payment_id"]]
        provider = cache.setdefault(a["provider"], factory(a["provider"]))
        status = attempts.reconciled_status(
            a["status"],
            expired=a["expires_at"] is not None and a["expires_at"] <= now,
            money_status=_money_status(payment, dict(a), provider.tracks_refunds),
        )
        if status is None:
            continue
        amount = a["paid_amount_idr"] if a["paid_amount_idr"] is not None else a["amount_idr"]
        ours[a["order_id"]] = (status, amount)
        attempt_of[a["order_id"]] = (a["payment_id"], a["attempt"])
        view = provider.view(a["order_id"], a["provider_ref"])
        if view is not None:
            theirs[a["order_id"]] = view
    mismatches = settlement.reconcile(ours, theirs)
    over = _overpayments(uow.session, agency_id, start, end, ids=list(by_id))
    return {
        "agency_id": agency_id,
        "date": day.isoformat(),
        "checked": len(ours),
        "mismatches": [
            {
                "payment_id": attempt_of.get(m.key, (m.key[:36], None))[0],
                "order_id": m.key,
                "attempt": attempt_of.get(m.key, (None, None))[1],
                "kind": m.kind,
                "ours": {"status": m.ours[0], "amount_idr": m.ours[1]} if m.ours else None,
                "provider": (
                    {"status": m.provider[0], "amount_idr": m.provider[1]} if m.provider else None
                ),
            }
            for m in mismatches
        ],
        "overpayments": [{**o, "paid_at": _iso(o["paid_at"])} for o in over],
    }
