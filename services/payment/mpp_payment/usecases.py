"""Payment use cases over the unit of work; the money rules live in ``domain``."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError

from mpp_chassis.db import next_in_sequence
from mpp_contracts.errors import BadRequest, NotFound, Unauthorized
from mpp_payment.adapters.tables import catalogue, notifications, payments, receipt_sequences
from mpp_payment.domain import numbers, qris, signatures, states


@dataclass(frozen=True)
class Settings:
    mall_code: str = "MPP"
    mall_timezone: str = "Asia/Jakarta"
    merchant_name: str = "MAL PELAYANAN PUBLIK"
    merchant_city: str = "JAKARTA"
    nmid: str = "ID1020000000001"
    merchant_pan: str = "9360000000000000001"
    qris_expiry_minutes: int = 30
    simulator_secret: str = "simulator-secret"


def now_utc() -> datetime:
    return datetime.now(UTC)


def _iso(value):
    return value.isoformat() if value is not None else None


# -- catalogue copy ----------------------------------------------------------------------------


def upsert_service(uow, payload: dict) -> None:
    values = {
        "agency_id": payload["agency_id"],
        "code": payload["code"],
        "name": payload["name"],
        "fee_idr": payload["fee_idr"],
        "active": payload.get("active", True),
    }
    updated = uow.session.execute(
        update(catalogue).where(catalogue.c.id == payload["service_id"]).values(**values)
    ).rowcount
    if not updated:
        uow.session.execute(insert(catalogue).values(id=payload["service_id"], **values))


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


def open_invoice(uow, settings: Settings, ticket: dict) -> dict | None:
    """Open the one invoice of a completed ticket whose service has a fee.

    The amount is the catalogue's fee (our copy, kept from ``service_*`` events); the fee carried by
    the ticket event is the queue's catalogue value at completion and is used only when our copy
    has not arrived yet. A second invoice for the same ticket is refused by a unique key.
    """
    fee = uow.session.execute(
        select(catalogue.c.fee_idr).where(catalogue.c.id == ticket["service_id"])
    ).scalar_one_or_none()
    amount = ticket["fee_idr"] if fee is None else fee
    if amount <= 0:
        return None
    created = now_utc()
    payment_id = str(uuid.uuid4())
    row = {
        "id": payment_id,
        "ticket_id": ticket["ticket_id"],
        "ticket_number": ticket["number"],
        "agency_id": ticket["agency_id"],
        "service_id": ticket["service_id"],
        "service_code": ticket["service_code"],
        "amount_idr": amount,
        "status": states.PaymentStatus.PENDING.value,
        "method": "qris",
        "provider": "simulator",
        "qris_payload": qris.build_dynamic_qris(
            merchant_name=settings.merchant_name,
            merchant_city=settings.merchant_city,
            nmid=settings.nmid,
            merchant_pan=settings.merchant_pan,
            amount_idr=amount,
            bill_number=ticket["number"].replace("-", "") + payment_id[:8].upper(),
        ),
        "expires_at": created + timedelta(minutes=settings.qris_expiry_minutes),
        "refunded_idr": 0,
        "created_at": created,
        "updated_at": created,
    }
    try:
        with uow.session.begin_nested():
            uow.session.execute(insert(payments).values(**row))
    except IntegrityError:
        return None  # this ticket already has its invoice
    uow.add_event("payment_requested", _event_payload(row))
    return row


def _load(session, payment_id: str) -> dict:
    row = session.execute(select(payments).where(payments.c.id == payment_id)).mappings().first()
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
        "qris": {"payload": row["qris_payload"]} if row["qris_payload"] else None,
        "va_number": row["va_number"],
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


# -- provider notifications --------------------------------------------------------------------


def simulator_notification(uow, settings: Settings, payment_id: str) -> tuple[bytes, str]:
    """What the simulated provider would send when the citizen pays: a signed JSON body."""
    row = _load(uow.session, payment_id)
    body = json.dumps(
        {
            "payment_id": row["id"],
            "status": "paid",
            "amount_idr": row["amount_idr"],
            "provider_ref": "SIM-" + uuid.uuid4().hex[:12].upper(),
        }
    ).encode()
    return body, signatures.simulator_signature(body, settings.simulator_secret)


def handle_notification(uow, settings: Settings, provider: str, headers: dict, body: str) -> dict:
    if provider != "simulator":
        raise NotFound("PROVIDER_NOT_FOUND", f"unknown payment provider {provider}")
    raw = body.encode()
    if not signatures.verify_simulator(
        raw, headers.get("x-simulator-signature"), settings.simulator_secret
    ):
        raise Unauthorized("BAD_SIGNATURE", "notification signature does not verify")
    try:
        note = json.loads(raw)
        payment_id, status, amount = note["payment_id"], note["status"], int(note["amount_idr"])
    except (ValueError, KeyError, TypeError):
        raise BadRequest("MALFORMED_NOTIFICATION", "notification body is not understood") from None
    if status != "paid":
        raise BadRequest("MALFORMED_NOTIFICATION", f"unsupported status {status}")
    row = _load(uow.session, payment_id)
    outcome = states.apply_paid_notification(
        row["status"], invoice_amount=row["amount_idr"], paid_amount=amount
    )
    now = now_utc()
    uow.session.execute(
        insert(notifications).values(
            provider=provider,
            payment_id=payment_id,
            body=body,
            outcome=outcome.flag or ("applied" if outcome.changed else "duplicate"),
            received_at=now,
        )
    )
    if outcome.changed:
        # conditional on the status we read: of concurrent duplicates exactly one wins
        won = uow.session.execute(
            update(payments)
            .where(payments.c.id == payment_id, payments.c.status == row["status"])
            .values(
                status=outcome.new_status.value,
                paid_at=now,
                paid_amount_idr=amount,
                provider_ref=note.get("provider_ref"),
                flag=outcome.flag,
                updated_at=now,
                receipt_number=_receipt_number(uow.session, settings, now),
            )
        ).rowcount
        if won:
            row = _load(uow.session, payment_id)
            uow.add_event("payment_succeeded", _event_payload(row))
            if outcome.flag:
                uow.add_event("payment_flagged", {**_event_payload(row), "flag": outcome.flag})
            return {"payment_id": payment_id, "result": "applied", "status": row["status"]}
    elif outcome.flag:
        uow.session.execute(
            update(payments)
            .where(payments.c.id == payment_id)
            .values(flag=outcome.flag, updated_at=now)
        )
        uow.add_event("payment_flagged", {**_event_payload(row), "flag": outcome.flag})
        return {"payment_id": payment_id, "result": "flagged", "flag": outcome.flag}
    return {"payment_id": payment_id, "result": "duplicate", "status": row["status"]}


def _receipt_number(session, settings: Settings, now: datetime) -> str:
    """Receipt numbers restart every mall-local day, drawn from an atomic per-day sequence."""
    day = now.astimezone(ZoneInfo(settings.mall_timezone)).date()
    seq = next_in_sequence(session, receipt_sequences, {"day": day})
    return numbers.receipt_number(settings.mall_code, day, seq)
