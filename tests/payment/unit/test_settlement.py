import csv
import io
from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mpp_payment.domain.settlement import (
    Mismatch,
    PaymentRecord,
    RefundRecord,
    SettlementError,
    reconcile,
    report_csv,
    settlement_report,
)
from mpp_payment.domain.states import PaymentStatus

WIB = timezone(timedelta(hours=7))
DAY = date(2026, 11, 28)
AGENCY = "dukcapil"


def payment(pid, paid_at, amount=50_000, agency=AGENCY, ticket="A001", receipt="MPP-1"):
    return PaymentRecord(
        payment_id=pid,
        agency_id=agency,
        ticket_number=ticket,
        service_code="KTP",
        method="qris",
        amount=amount,
        paid_at=paid_at,
        receipt_number=receipt if paid_at else None,
    )


def refund(rid, pid, amount, at, agency=AGENCY):
    return RefundRecord(rid, pid, agency, amount, at)


def test_day_boundaries_are_mall_local():
    payments = [
        payment("before", datetime(2026, 11, 27, 16, 59, 59, tzinfo=UTC)),  # 23:59:59 WIB on 27th
        payment("first", datetime(2026, 11, 27, 17, 0, tzinfo=UTC)),  # 00:00 WIB on 28th
        payment("last", datetime(2026, 11, 28, 23, 59, 59, tzinfo=WIB)),
        payment("after", datetime(2026, 11, 28, 17, 0, tzinfo=UTC)),  # 00:00 WIB on 29th
        payment("unpaid", None),
    ]
    report = settlement_report(AGENCY, DAY, "Asia/Jakarta", payments, [])
    assert [line.payment_id for line in report.lines] == ["first", "last"]
    assert report.lines[0].paid_at == datetime(2026, 11, 28, 0, 0, tzinfo=WIB)
    assert (report.gross, report.refunds, report.net, report.count) == (100_000, 0, 100_000, 2)


def test_same_instant_belongs_to_different_days_in_other_zones():
    at = datetime(2026, 11, 28, 16, 30, tzinfo=UTC)  # 23:30 WIB, 00:30 WITA on 29th
    wib = settlement_report(AGENCY, DAY, "Asia/Jakarta", [payment("p", at)], [])
    wita = settlement_report(AGENCY, DAY, "Asia/Makassar", [payment("p", at)], [])
    assert wib.count == 1 and wita.count == 0


def test_other_agencies_are_excluded():
    at = datetime(2026, 11, 28, 10, 0, tzinfo=WIB)
    report = settlement_report(
        AGENCY,
        DAY,
        "Asia/Jakarta",
        [payment("mine", at), payment("theirs", at, agency="imigrasi")],
        [refund("r", "theirs", 1_000, at, agency="imigrasi")],
    )
    assert [line.payment_id for line in report.lines] == ["mine"]


def test_same_day_refund_is_netted_on_the_payment_line():
    paid = datetime(2026, 11, 28, 9, 0, tzinfo=WIB)
    report = settlement_report(
        AGENCY,
        DAY,
        "Asia/Jakarta",
        [payment("p", paid)],
        [
            refund("r1", "p", 10_000, paid + timedelta(hours=1)),
            refund("r2", "p", 5_000, paid + timedelta(hours=2)),
        ],
    )
    (line,) = report.lines
    assert (line.paid_amount, line.refunded_amount, line.net_amount) == (50_000, 15_000, 35_000)
    assert (report.gross, report.refunds, report.net, report.count) == (50_000, 15_000, 35_000, 1)


def test_refund_of_an_earlier_payment_counts_on_the_refund_day_only():
    paid = datetime(2026, 11, 27, 9, 0, tzinfo=WIB)
    refunded = datetime(2026, 11, 28, 9, 0, tzinfo=WIB)
    payments = [payment("old", paid)]
    refunds = [refund("r", "old", 50_000, refunded)]
    day_before = settlement_report(AGENCY, date(2026, 11, 27), "Asia/Jakarta", payments, refunds)
    today = settlement_report(AGENCY, DAY, "Asia/Jakarta", payments, refunds)
    assert (day_before.gross, day_before.refunds) == (50_000, 0)
    (line,) = today.lines
    assert (line.paid_amount, line.refunded_amount, line.net_amount) == (0, 50_000, -50_000)
    assert line.paid_at == paid
    assert (today.gross, today.refunds, today.net) == (0, 50_000, -50_000)


def test_refund_for_unknown_payment_is_an_error():
    at = datetime(2026, 11, 28, 9, 0, tzinfo=WIB)
    with pytest.raises(SettlementError):
        settlement_report(AGENCY, DAY, "Asia/Jakarta", [], [refund("r", "ghost", 1, at)])


def test_naive_times_are_refused():
    with pytest.raises(SettlementError):
        settlement_report(AGENCY, DAY, "Asia/Jakarta", [payment("p", datetime(2026, 11, 28))], [])


def test_lines_are_ordered_by_first_event_of_the_day():
    t = datetime(2026, 11, 28, 8, 0, tzinfo=WIB)
    payments = [
        payment("late", t + timedelta(hours=5)),
        payment("early", t),
        payment("old", t - timedelta(days=3)),
    ]
    refunds = [refund("r", "old", 1_000, t + timedelta(hours=1))]
    report = settlement_report(AGENCY, DAY, "Asia/Jakarta", payments, refunds)
    assert [line.payment_id for line in report.lines] == ["early", "old", "late"]


def test_empty_day():
    report = settlement_report(AGENCY, DAY, "Asia/Jakarta", [], [])
    assert (report.lines, report.gross, report.refunds, report.net, report.count) == (
        (),
        0,
        0,
        0,
        0,
    )
    assert report_csv(report).splitlines()[-1] == "TOTAL,0,,,0,0,0,,"


def test_csv_has_header_rows_and_totals():
    paid = datetime(2026, 11, 28, 9, 0, tzinfo=WIB)
    report = settlement_report(
        AGENCY,
        DAY,
        "Asia/Jakarta",
        [
            payment("p1", paid, 50_000, ticket="A001", receipt="MPP-20261128-000001"),
            payment(
                "p2",
                paid + timedelta(minutes=5),
                1_250_000,
                ticket="B002",
                receipt="MPP-20261128-000002",
            ),
        ],  # fmt: skip
        [refund("r", "p1", 20_000, paid + timedelta(hours=1))],
    )
    text = report_csv(report)
    assert text.endswith("\r\n")
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == [
        "payment_id",
        "ticket_number",
        "service_code",
        "method",
        "paid_amount",
        "refunded_amount",
        "net_amount",
        "paid_at",
        "receipt_number",
    ]
    assert rows[1] == [
        "p1", "A001", "KTP", "qris", "50000", "20000", "30000",
        "2026-11-28T09:00:00+07:00", "MPP-20261128-000001",
    ]  # fmt: skip
    assert rows[2][4:7] == ["1250000", "0", "1250000"]
    assert rows[3] == ["TOTAL", "2", "", "", "1300000", "20000", "1280000", "", ""]
    for row in rows[1:]:
        assert all(cell.lstrip("-").isdigit() for cell in row[4:7])


amounts = st.integers(1, 10**9)


@given(
    paid=st.lists(st.tuples(amounts, st.integers(-2 * 86_400, 2 * 86_400)), max_size=15),
    refund_fractions=st.lists(st.integers(0, 100), max_size=15),
)
def test_totals_equal_sum_of_lines_and_net_is_gross_minus_refunds(paid, refund_fractions):
    midnight = datetime(2026, 11, 28, tzinfo=WIB)
    payments = [
        payment(f"p{i}", midnight + timedelta(seconds=offset), amount)
        for i, (amount, offset) in enumerate(paid)
    ]
    refunds = [
        refund(f"r{i}", p.payment_id, p.amount * pct // 100, midnight + timedelta(hours=12))
        for i, (p, pct) in enumerate(zip(payments, refund_fractions, strict=False))
        if p.amount * pct // 100 > 0
    ]
    report = settlement_report(AGENCY, DAY, "Asia/Jakarta", payments, refunds)
    assert report.gross == sum(line.paid_amount for line in report.lines)
    assert report.refunds == sum(line.refunded_amount for line in report.lines)
    assert report.net == report.gross - report.refunds
    assert report.count == len(report.lines)
    in_day = [amount for amount, offset in paid if 0 <= offset < 86_400]
    assert report.gross == sum(in_day)
    assert report.refunds == sum(r.amount for r in refunds)
    assert all(line.net_amount == line.paid_amount - line.refunded_amount for line in report.lines)


def test_reconcile_reports_each_kind_of_mismatch():
    ours = {
        "ok": (PaymentStatus.PAID, 50_000),
        "only-ours": (PaymentStatus.PENDING, 10_000),
        "status": (PaymentStatus.PENDING, 20_000),
        "amount": ("paid", 30_000),
        "both": (PaymentStatus.PAID, 40_000),
    }
    providers = {
        "ok": ("paid", 50_000),
        "only-theirs": ("paid", 15_000),
        "status": ("paid", 20_000),
        "amount": (PaymentStatus.PAID, 3_000),
        "both": ("refunded", 4_000),
    }
    assert reconcile(ours, providers) == [
        Mismatch("amount", "amount_differs", ("paid", 30_000), ("paid", 3_000)),
        Mismatch("both", "amount_differs", ("paid", 40_000), ("refunded", 4_000)),
        Mismatch("both", "status_differs", ("paid", 40_000), ("refunded", 4_000)),
        Mismatch("only-ours", "missing_at_provider", ("pending", 10_000), None),
        Mismatch("only-theirs", "missing_here", None, ("paid", 15_000)),
        Mismatch("status", "status_differs", ("pending", 20_000), ("paid", 20_000)),
    ]


@given(
    st.dictionaries(st.text(max_size=8), st.tuples(st.sampled_from(list(PaymentStatus)), amounts))
)
def test_reconcile_identical_views_has_no_mismatch(records):
    assert reconcile(records, {k: (s.value, a) for k, (s, a) in records.items()}) == []


def test_reconcile_empty():
    assert reconcile({}, {}) == []
