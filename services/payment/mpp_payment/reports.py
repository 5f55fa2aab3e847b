"""The agency's money reports: the day's settlement (cash basis, with overpayments and the
suspense account apart) and reconciliation of every charge attempt against its provider."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import and_, func, or_, select

from mpp_contracts.errors import ValidationFailed
from mpp_contracts.mallday import day_window, mall_day
from mpp_payment.adapters import providers as adapters
from mpp_payment.adapters.tables import charge_attempts, journal_lines, payments, refunds
from mpp_payment.domain import attempts, ledger, settlement
from mpp_payment.usecases import Settings, check_agency, iso, make_provider, now_utc


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
    check_agency(actor, agency_id)
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
        "overpayments": [{**o, "paid_at": iso(o["paid_at"])} for o in over],
        "lines": [
            {
                "payment_id": line.payment_id,
                "ticket_number": line.ticket_number,
                "service_code": line.service_code,
                "method": line.method,
                "paid_idr": line.paid_amount,
                "refunded_idr": line.refunded_amount,
                "net_idr": line.net_amount,
                "paid_at": iso(line.paid_at),
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
    check_agency(actor, agency_id)
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
        "overpayments": [{**o, "paid_at": iso(o["paid_at"])} for o in over],
    }
