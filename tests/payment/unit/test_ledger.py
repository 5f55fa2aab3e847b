from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mpp_payment.domain.errors import InvalidAmount
from mpp_payment.domain.ledger import (
    JournalEntry,
    Line,
    Unbalanced,
    agency_payable,
    balances,
    entries_for_payment,
    entries_for_refund,
    provider_clearing,
)

AT = datetime(2026, 11, 28, 3, 0, tzinfo=UTC)


def test_account_names():
    assert provider_clearing("midtrans") == "provider_clearing:midtrans"
    assert agency_payable("dukcapil-bekasi") == "agency_payable:dukcapil-bekasi"


@pytest.mark.parametrize("key", ["", "a:b", " padded"])
def test_account_keys_must_be_unambiguous(key):
    with pytest.raises(ValueError):
        agency_payable(key)


def test_payment_debits_clearing_and_credits_agency():
    (entry,) = entries_for_payment("p-1", "dukcapil", "midtrans", 50_000, AT)
    assert entry.lines == (
        Line("provider_clearing:midtrans", debit=50_000),
        Line("agency_payable:dukcapil", credit=50_000),
    )
    assert entry.total == 50_000
    assert entry.reference == "p-1"
    assert entry.occurred_at == AT
    assert balances([entry]) == {
        "provider_clearing:midtrans": 50_000,
        "agency_payable:dukcapil": -50_000,
    }


def test_refund_reverses_the_payment():
    payment = entries_for_payment("p-1", "dukcapil", "xendit", 50_000, AT)
    partial = entries_for_refund("r-1", "p-1", "dukcapil", "xendit", 20_000, AT)
    assert balances(payment + partial) == {
        "provider_clearing:xendit": 30_000,
        "agency_payable:dukcapil": -30_000,
    }
    rest = entries_for_refund("r-2", "p-1", "dukcapil", "xendit", 30_000, AT)
    assert balances(payment + partial + rest) == {
        "provider_clearing:xendit": 0,
        "agency_payable:dukcapil": 0,
    }


def test_unbalanced_entry_is_refused():
    with pytest.raises(Unbalanced):
        JournalEntry(
            lines=(Line("provider_clearing:x", debit=100), Line("agency_payable:y", credit=99)),
            memo="typo",
            occurred_at=AT,
        )


def test_single_line_entry_is_refused():
    with pytest.raises(Unbalanced):
        JournalEntry(lines=(Line("provider_clearing:x", debit=100),), memo="half", occurred_at=AT)


def test_entry_needs_aware_time():
    with pytest.raises(ValueError):
        JournalEntry(
            lines=(Line("a", debit=1), Line("b", credit=1)),
            memo="naive",
            occurred_at=datetime(2026, 11, 28, 10, 0),
        )


def test_multi_line_entry_balances_across_lines():
    entry = JournalEntry(
        lines=[Line("a", debit=70), Line("b", debit=30), Line("c", credit=100)],
        memo="split",
        occurred_at=AT,
    )
    assert isinstance(entry.lines, tuple)
    assert balances([entry]) == {"a": 70, "b": 30, "c": -100}


@pytest.mark.parametrize(
    ("debit", "credit"), [(0, 0), (10, 10), (-5, 0), (0, -5), (10.0, 0), (True, 0)]
)
def test_line_must_have_exactly_one_positive_integer_side(debit, credit):
    with pytest.raises(InvalidAmount):
        Line("a", debit=debit, credit=credit)


@pytest.mark.parametrize("amount", [0, -1, 1.5, True])
def test_payment_and_refund_amounts_must_be_positive_integers(amount):
    with pytest.raises(InvalidAmount):
        entries_for_payment("p", "a", "midtrans", amount, AT)
    with pytest.raises(InvalidAmount):
        entries_for_refund("r", "p", "a", "midtrans", amount, AT)


def test_balances_of_nothing_is_empty():
    assert balances([]) == {}


movements = st.lists(
    st.tuples(
        st.sampled_from(["payment", "refund"]),
        st.sampled_from(["dukcapil", "imigrasi", "samsat"]),
        st.sampled_from(["midtrans", "xendit", "simulator"]),
        st.integers(1, 10**10),
    ),
    max_size=40,
)


def _entries(moves):
    entries = []
    for index, (kind, agency, provider, amount) in enumerate(moves):
        if kind == "payment":
            entries += entries_for_payment(f"p-{index}", agency, provider, amount, AT)
        else:
            entries += entries_for_refund(f"r-{index}", f"p-{index}", agency, provider, amount, AT)
    return entries


@given(movements)
def test_sum_of_all_balances_is_always_zero(moves):
    assert sum(balances(_entries(moves)).values()) == 0


@given(movements)
def test_clearing_equals_what_agencies_are_owed(moves):
    totals = balances(_entries(moves))
    clearing = sum(v for k, v in totals.items() if k.startswith("provider_clearing:"))
    payable = sum(v for k, v in totals.items() if k.startswith("agency_payable:"))
    assert clearing == -payable
    net = sum(amount if kind == "payment" else -amount for kind, _, _, amount in moves)
    assert clearing == net
