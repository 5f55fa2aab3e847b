"""Payment use cases over the unit of work; the money rules live in ``domain``.

This module: settings and the provider factory, the catalogue copy, invoice views, expiry, and
the helpers the other use-case modules share. Whether a completed ticket owes anything:
``verdicts``; opening invoices and making charges: ``charging``; provider notifications:
``notices``; refunds: ``refunds``; settlement and reconciliation: ``reports``.

Every use case that changes a payment first locks its row (``SELECT … FOR UPDATE`` on PostgreSQL;
SQLite serialises writers), decides with the pure domain rules, then writes the payment, its
journal lines and its outbox events in the caller's one transaction.
"""

from __future__ import annotations

import functools
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import bindparam, func, insert, or_, select, text, update
from sqlalchemy.exc import IntegrityError

from mpp_chassis.prepared import PREPARE
from mpp_contracts.errors import NotFound
from mpp_contracts.scope import require_agency_scope
from mpp_payment.adapters import providers as adapters
from mpp_payment.adapters.http import ProviderHttp
from mpp_payment.adapters.tables import (
    catalogue,
    charge_attempts,
    journal_lines,
    payments,
)
from mpp_payment.domain import qris, states
from mpp_payment.domain.attempts import AttemptStatus


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


def iso(value):
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


def upsert_service(uow, payload: dict) -> bool:
    """Apply a catalogue event to the copy unless the copy already holds a newer (or the same)
    version: consumers run concurrently and relays of several replicas publish in any order, so
    a stale fee must never win. An event without a version (from before versions) only
    replaces a copy without one. True if the copy changed."""
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
        return True
    known = select(catalogue.c.id).where(catalogue.c.id == payload["service_id"])
    if uow.session.execute(known).first() is not None:
        return False  # the copy is newer already
    try:
        with uow.session.begin_nested():
            uow.session.execute(insert(catalogue).values(id=payload["service_id"], **values))
    except IntegrityError:  # another event of this service inserted it meanwhile
        return bool(uow.session.execute(change.values(**values)).rowcount)
    return True


def apply_catalogue_event(uow, payload: dict) -> None:
    """Keep the copy (:func:`upsert_service`) and, when it took this version, publish this
    service's verdict for it (``payment_terms_set``): the queue routes each completion by it, so
    a completion of a free service reaches the rating service without passing here
    (docs/decisions/0013-free-completions-routing.md). The verdict stays ours; the queue only
    compares the version it is for with the one in force at completion."""
    if upsert_service(uow, payload):
        uow.add_event(
            "payment_terms_set",
            {
                "service_id": payload["service_id"],
                "agency_id": payload["agency_id"],
                "version": payload.get("version"),
                "payment_required": needs_paying(payload["fee_idr"]),
            },
        )


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


def needs_paying(amount: int) -> bool:
    """The rule for a ticket's amount (:func:`~mpp_payment.verdicts.invoice_amount`), and for a
    service version's terms: anything above 0 rupiah is invoiced; 0 is "no payment required"."""
    return amount > 0


# reads by key run prepared: planned once per connection, not at every call (mpp_chassis.prepared)
_PAYMENT = (
    select(payments).where(payments.c.id == bindparam("payment_id")).execution_options(**PREPARE)
)
_PAYMENT_LOCKED = _PAYMENT.with_for_update()


def load_payment(session, payment_id: str, *, lock: bool = False) -> dict:
    query = _PAYMENT_LOCKED if lock else _PAYMENT
    row = session.execute(query, {"payment_id": payment_id}).mappings().first()
    if row is None:
        raise NotFound("PAYMENT_NOT_FOUND", "no such payment")
    return dict(row)


def _payment_and_attempt():
    """The invoice and one of its attempts (by number; none given: the current one), read in one
    statement."""
    attempt = charge_attempts.alias("a")
    number = func.coalesce(
        bindparam("number", type_=charge_attempts.c.attempt.type), payments.c.method_attempt
    )
    return (
        select(payments, *(c.label(f"a_{c.name}") for c in attempt.columns))
        .outerjoin(attempt, (attempt.c.payment_id == payments.c.id) & (attempt.c.attempt == number))
        .where(payments.c.id == bindparam("payment_id"))
    )


_PAYMENT_AND_ATTEMPT = _payment_and_attempt().execution_options(**PREPARE)
_ATTEMPT_KEYS = tuple((f"a_{c.name}", c.name) for c in charge_attempts.columns)


def load_payment_and_attempt(
    session, payment_id: str, number: int | None = None
) -> tuple[dict, dict | None]:
    """:func:`load_payment` and :func:`load_attempt` (attempt ``number``, else the invoice's
    current one) in one round trip and one snapshot, without a lock (a lock taken by a join
    rechecks only the locked row: a writer must lock the invoice, then read its attempt); the
    attempt is None if the invoice has no such attempt."""
    found = session.execute(
        _PAYMENT_AND_ATTEMPT, {"payment_id": payment_id, "number": number}
    ).mappings()
    row = found.first()
    if row is None:
        raise NotFound("PAYMENT_NOT_FOUND", "no such payment")
    row = dict(row)
    attempt = {name: row.pop(label) for label, name in _ATTEMPT_KEYS}
    return row, (attempt if attempt["id"] is not None else None)


@functools.cache
def insert_unless_present(table, columns: tuple[str, ...], returning: str):
    """``INSERT … ON CONFLICT DO NOTHING RETURNING <returning>`` (PostgreSQL and SQLite alike):
    one round trip where a read, a savepoint and an insert took four; no row back means a row
    with one of its unique keys exists. Written as text and built once per column set (SQLAlchemy
    compiles an ``ON CONFLICT`` construct anew on every call)."""
    return text(
        f"INSERT INTO {table.name} ({', '.join(columns)}) "  # noqa: S608 - names from a Table
        f"VALUES ({', '.join(':' + c for c in columns)}) "
        f"ON CONFLICT DO NOTHING RETURNING {returning}"
    ).bindparams(*(bindparam(c, type_=table.c[c].type) for c in columns))


def _with_attempts():
    """The invoice with what its attempts say, read in **one** statement: on PostgreSQL each
    statement has its own snapshot, so reading the attempt apart could see the charge stored
    ("ready") and the invoice from before it (no QR)."""
    attempt = charge_attempts.alias("attempt")
    current = (
        select(attempt.c.status)
        .where(
            attempt.c.payment_id == payments.c.id, attempt.c.attempt == payments.c.method_attempt
        )
        .scalar_subquery()
    )
    overpaid = (
        select(func.coalesce(func.sum(attempt.c.overpaid_idr - attempt.c.overpaid_refunded_idr), 0))
        .where(attempt.c.payment_id == payments.c.id)
        .scalar_subquery()
    )
    view = select(payments, current.label("current_status"), overpaid.label("overpaid_open"))
    return view.execution_options(**PREPARE)  # read by key: planned once per connection


def _viewed(row) -> dict:
    """The view of a row read with :func:`_with_attempts`: "preparing" while the current
    attempt's charge is not made yet, else "ready"; the overpayment not yet refunded."""
    row = dict(row)
    preparing = row.pop("current_status") == AttemptStatus.CREATING.value
    overpaid = int(row.pop("overpaid_open") or 0)
    return payment_view(row, "preparing" if preparing else "ready", overpaid)


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
        "expires_at": iso(row["expires_at"]),
        "paid_at": iso(row["paid_at"]),
        "refunded_idr": row["refunded_idr"],
        "overpaid_idr": overpaid_idr,
        "flag": row.get("flag"),
        "receipt": (
            {
                "number": row["receipt_number"],
                "paid_at": iso(row["paid_at"]),
                "amount_idr": row["paid_amount_idr"],
            }
            if row.get("receipt_number")
            else None
        ),
    }


_VIEW_BY_ID = _with_attempts().where(payments.c.id == bindparam("payment_id"))
_VIEW_BY_TICKET = _with_attempts().where(payments.c.ticket_id == bindparam("ticket_id"))


def get_payment(uow, payment_id: str) -> dict:
    found = uow.session.execute(_VIEW_BY_ID, {"payment_id": payment_id}).mappings().first()
    if found is None:
        raise NotFound("PAYMENT_NOT_FOUND", "no such payment")
    return _viewed(found)


def ticket_payment(uow, ticket_id: str) -> tuple[dict, str | None] | None:
    """A ticket's invoice view and the digest of its access code stored with it (None: the
    completion carried none); None if the ticket has no invoice."""
    found = uow.session.execute(_VIEW_BY_TICKET, {"ticket_id": ticket_id}).mappings().first()
    return None if found is None else (_viewed(found), found["access_digest"])


def get_ticket_payment(uow, ticket_id: str) -> dict:
    if (found := ticket_payment(uow, ticket_id)) is None:
        raise NotFound("PAYMENT_NOT_FOUND", "this ticket has no invoice (yet)")
    return found[0]


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


def load_attempt(session, payment_id: str, number: int) -> dict | None:
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


_INSERT_JOURNAL = insert(journal_lines)


def journal(uow, entries, agency_id: str) -> None:
    """Store the entries' lines, all in one multi-row insert."""
    rows = journal_rows(entries, agency_id)
    if rows:
        uow.session.execute(_INSERT_JOURNAL, rows)


def journal_rows(entries, agency_id: str) -> list[dict]:
    """The rows of the entries' journal lines, as :func:`journal` stores them."""
    rows = []
    for entry in entries:
        entry_id = str(uuid.uuid4())
        rows.extend(
            {
                "entry_id": entry_id,
                "account": line.account,
                "agency_id": agency_id,
                "debit_idr": line.debit,
                "credit_idr": line.credit,
                "kind": entry.metadata["kind"],
                "reference": entry.reference,
                "memo": entry.memo[:120],
                "occurred_at": entry.occurred_at,
            }
            for line in entry.lines
        )
    return rows


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


def check_agency(
    actor: dict | None, agency_id: str, anonymous: str = "refunds need an agency administrator"
) -> None:
    require_agency_scope(
        actor,
        agency_id,
        ("agency_admin",),
        code="WRONG_AGENCY",
        message="this payment belongs to another agency",
        anonymous=anonymous,
    )
