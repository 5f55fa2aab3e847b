"""Daily settlement report per agency, and reconciliation against a provider's records.

Day rule (cash basis): a report for mall-local day D lists every payment *paid* during D and every
refund *made* during D, in the mall's time zone (WIB/WITA/WIT). Each rupiah therefore appears in
exactly one day's report, on the day it moved, and a report never changes once the day is over. A
refund of a payment paid on an earlier day gives a line with ``paid_amount`` 0, so the day's net can
be negative.
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from enum import Enum
from zoneinfo import ZoneInfo

from mpp_contracts.mallday import day_window

from .errors import SettlementError


@dataclass(frozen=True)
class PaymentRecord:
    """What the report needs of a stored payment. ``paid_at`` is None while unpaid."""

    payment_id: str
    agency_id: str
    ticket_number: str
    service_code: str
    method: str
    amount: int
    paid_at: datetime | None
    receipt_number: str | None


@dataclass(frozen=True)
class RefundRecord:
    refund_id: str
    payment_id: str
    agency_id: str
    amount: int
    refunded_at: datetime


@dataclass(frozen=True)
class SettlementLine:
    payment_id: str
    ticket_number: str
    service_code: str
    method: str
    paid_amount: int
    refunded_amount: int
    net_amount: int
    paid_at: datetime | None  # mall-local time
    receipt_number: str | None


@dataclass(frozen=True)
class Report:
    agency_id: str
    day: date
    tz: str
    lines: tuple[SettlementLine, ...]
    gross: int
    refunds: int
    net: int
    count: int


def _aware(moment: datetime, what: str) -> datetime:
    if moment.tzinfo is None:
        raise SettlementError(f"{what} must be timezone-aware; a naive time has no mall-local day")
    return moment


def settlement_report(
    agency_id: str,
    day: date,
    tz: str,
    payments: Iterable[PaymentRecord],
    refunds: Iterable[RefundRecord],
) -> Report:
    """Build the agency's report for mall-local ``day`` (rule in the module docstring).

    ``payments`` may contain more than the day's payments (other days, other agencies): they are
    filtered here. It must contain every payment that a refund of the day refers to, since the line
    describes the payment (ticket, service, receipt); a missing one raises ``SettlementError``.
    """
    zone = ZoneInfo(tz)
    start, end = day_window(day, zone)
    by_id = {p.payment_id: p for p in payments if p.agency_id == agency_id}
    paid_today = {
        pid: p
        for pid, p in by_id.items()
        if p.paid_at is not None and start <= _aware(p.paid_at, "paid_at") < end
    }
    refunded: dict[str, int] = defaultdict(int)
    first_refund: dict[str, datetime] = {}
    for refund in refunds:
        if refund.agency_id != agency_id:
            continue
        if not start <= _aware(refund.refunded_at, "refunded_at") < end:
            continue
        if refund.payment_id not in by_id:
            raise SettlementError(f"refund {refund.refund_id}: payment {refund.payment_id} unknown")
        refunded[refund.payment_id] += refund.amount
        seen = first_refund.get(refund.payment_id)
        first_refund[refund.payment_id] = min(seen or refund.refunded_at, refund.refunded_at)

    def first_event(pid: str) -> datetime:
        payment = paid_today.get(pid)
        return payment.paid_at if payment is not None and payment.paid_at else first_refund[pid]

    lines = []
    for pid in sorted(set(paid_today) | set(refunded), key=lambda p: (first_event(p), p)):
        payment = by_id[pid]
        paid_amount = payment.amount if pid in paid_today else 0
        refunded_amount = refunded.get(pid, 0)
        lines.append(
            SettlementLine(
                payment_id=pid,
                ticket_number=payment.ticket_number,
                service_code=payment.service_code,
                method=payment.method,
                paid_amount=paid_amount,
                refunded_amount=refunded_amount,
                net_amount=paid_amount - refunded_amount,
                paid_at=payment.paid_at.astimezone(zone) if payment.paid_at else None,
                receipt_number=payment.receipt_number,
            )
        )
    gross = sum(line.paid_amount for line in lines)
    refunds_total = sum(line.refunded_amount for line in lines)
    return Report(
        agency_id=agency_id,
        day=day,
        tz=tz,
        lines=tuple(lines),
        gross=gross,
        refunds=refunds_total,
        net=gross - refunds_total,
        count=len(lines),
    )


CSV_HEADER = (
    "payment_id",
    "ticket_number",
    "service_code",
    "method",
    "paid_amount",
    "refunded_amount",
    "net_amount",
    "paid_at",
    "receipt_number",
)


def report_csv(report: Report) -> str:
    """CSV for agencies' finance staff: header, one row per line, then a totals row.

    Amounts are plain integers (no separators, no decimals) so spreadsheets add them up exactly. The
    totals row reads ``TOTAL`` in ``payment_id`` and the line count in ``ticket_number``.
    """
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(CSV_HEADER)
    for line in report.lines:
        writer.writerow(
            (
                line.payment_id,
                line.ticket_number,
                line.service_code,
                line.method,
                line.paid_amount,
                line.refunded_amount,
                line.net_amount,
                line.paid_at.isoformat() if line.paid_at else "",
                line.receipt_number or "",
            )
        )
    writer.writerow(
        ("TOTAL", report.count, "", "", report.gross, report.refunds, report.net, "", "")
    )
    return buffer.getvalue()


@dataclass(frozen=True)
class Mismatch:
    """One disagreement between our records and the provider's, keyed by payment/order id.

    ``kind`` is ``missing_at_provider``, ``missing_here`` (money the provider holds that we do not
    know about: the most urgent), ``status_differs`` or ``amount_differs``.
    """

    key: str
    kind: str
    ours: tuple[str, int] | None
    provider: tuple[str, int] | None


def _normal(record: tuple[object, int]) -> tuple[str, int]:
    status, amount = record
    return (status.value if isinstance(status, Enum) else str(status), amount)


def reconcile(
    ours: Mapping[str, tuple[object, int]], providers: Mapping[str, tuple[object, int]]
) -> list[Mismatch]:
    """Compare two ``{id: (status, amount)}`` views, both already in our status vocabulary.

    A record whose status and amount both differ yields two mismatches, one per cause, so each can
    be counted and resolved separately. Results are sorted by key, then kind, for stable reports.
    """
    mismatches: list[Mismatch] = []
    for key in sorted(set(ours) | set(providers)):
        mine = _normal(ours[key]) if key in ours else None
        theirs = _normal(providers[key]) if key in providers else None
        if theirs is None:
            mismatches.append(Mismatch(key, "missing_at_provider", mine, None))
        elif mine is None:
            mismatches.append(Mismatch(key, "missing_here", None, theirs))
        else:
            if mine[1] != theirs[1]:
                mismatches.append(Mismatch(key, "amount_differs", mine, theirs))
            if mine[0] != theirs[0]:
                mismatches.append(Mismatch(key, "status_differs", mine, theirs))
    return mismatches
