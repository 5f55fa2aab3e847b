"""Provider notifications: each verified notice applied once to its own charge attempt (rules in
``domain.states`` for the invoice and ``domain.attempts`` for the attempt), and the simulator's
"pay" button, a test double."""

from __future__ import annotations

import functools
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import and_, bindparam, case, func, insert, or_, select, text, update

from mpp_chassis.prepared import PREPARE
from mpp_chassis.sequences import next_in_sequence
from mpp_contracts.errors import BadRequest, Conflict, NotFound
from mpp_contracts.mallday import mall_day
from mpp_payment.adapters import providers as adapters
from mpp_payment.adapters.tables import (
    charge_attempts,
    journal_lines,
    notifications,
    payments,
    receipt_sequences,
)
from mpp_payment.domain import attempts, ledger, numbers, states
from mpp_payment.domain.attempts import AttemptStatus
from mpp_payment.usecases import (
    Settings,
    check_agency,
    event_payload,
    insert_unless_present,
    journal_rows,
    load_payment,
    load_payment_and_attempt,
    make_provider,
    now_utc,
)
from mpp_payment.verdicts import completion_facts


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
    row, current = load_payment_and_attempt(uow.session, payment_id)
    check_agency(actor, row["agency_id"], "the simulator pays for an agency administrator only")
    if row["provider"] != "simulator":
        raise Conflict("NOT_SIMULATED", "this payment is not handled by the simulator")
    if current is None or current["status"] == AttemptStatus.CREATING.value:
        raise Conflict("CHARGE_NOT_READY", "the payment's charge is still being prepared")
    provider = make_provider("simulator", settings, uow.session)
    amount = provider.record_paid(current["order_id"], now_utc())  # the QR / VA shown now
    order = current["order_id"]
    return provider.notification(order, "paid", amount, "SIM-" + uuid.uuid4().hex[:12].upper())


_REPLAYED = (
    update(notifications)
    .where(
        notifications.c.provider == bindparam("notice_provider"),
        notifications.c.notice_key == bindparam("key"),
    )
    .values(replays=notifications.c.replays + 1, last_received_at=bindparam("now"))
)
_ATTEMPT_AND_NOTICE = (
    select(
        charge_attempts,
        select(notifications.c.id)
        .where(
            notifications.c.provider == bindparam("notice_provider"),
            notifications.c.notice_key == bindparam("key"),
        )
        .exists()
        .label("notice_seen"),
    )
    .where(
        charge_attempts.c.payment_id == bindparam("invoice_id"),
        charge_attempts.c.attempt == bindparam("n"),
    )
    .execution_options(**PREPARE)
)  # by key: planned once per connection
_NOTICE_COLUMNS = (
    "provider",
    "payment_id",
    "notice_key",
    "body",
    "outcome",
    "received_at",
    "replays",
    "last_received_at",
)


def _seen(uow, provider: str, key: str, now) -> bool:
    """True if this verified notice was stored before; its replay is counted on that one row."""
    params = {"notice_provider": provider, "key": key, "now": now}
    return bool(uow.session.execute(_REPLAYED, params).rowcount)


_JOURNAL_COLUMNS = tuple(c.name for c in journal_lines.c if c.name != "id")
_INSERT_LINES = insert(journal_lines)


@functools.cache
def _journal_and_notice(lines: int):
    """PostgreSQL: the notice's journal lines and the notice itself in one statement,
    ``WITH journal AS (INSERT INTO journal_lines …) INSERT INTO provider_notifications …``:
    a paid notice's two inserts were two round trips (issue 20). Built once per line count."""
    notice = insert_unless_present(notifications, _NOTICE_COLUMNS, "id")
    values = ", ".join(
        "(" + ", ".join(f":j{i}_{c}" for c in _JOURNAL_COLUMNS) + ")" for i in range(lines)
    )
    return (
        text(
            f"WITH journal AS (INSERT INTO journal_lines ({', '.join(_JOURNAL_COLUMNS)}) "
            f"VALUES {values}) {notice.text}"
        )
        .bindparams(
            *(
                bindparam(f"j{i}_{c}", type_=journal_lines.c[c].type)
                for i in range(lines)
                for c in _JOURNAL_COLUMNS
            ),
            *(bindparam(c, type_=notifications.c[c].type) for c in _NOTICE_COLUMNS),
        )
        .execution_options(**PREPARE)
    )  # planned once per connection and line count


def _record(
    uow,
    provider: str,
    payment_id: str | None,
    key: str,
    body: str,
    outcome: str,
    now,
    lines: list[dict] = (),
) -> None:
    """Store a verified notice once (unique on provider + key), with the journal ``lines`` its
    outcome books (in its statement on PostgreSQL). The payment row is locked, so a concurrent
    twin of this notice usually waits and then finds it in :func:`_seen`; where the lock is not
    taken (SQLite), the unique index turns the twin's insert into a no-op."""
    params = {
        "provider": provider,
        "payment_id": payment_id,
        "notice_key": key,
        "body": body,
        "outcome": outcome,
        "received_at": now,
        "replays": 0,
        "last_received_at": now,
    }
    statement = insert_unless_present(notifications, _NOTICE_COLUMNS, "id")
    if lines and uow.session.get_bind().dialect.name == "postgresql":
        statement = _journal_and_notice(len(lines))
        for i, line in enumerate(lines):
            params.update({f"j{i}_{c}": line[c] for c in _JOURNAL_COLUMNS})
    elif lines:
        uow.session.execute(_INSERT_LINES, lines)
    stored = uow.session.execute(statement, params).first()
    if stored is None:
        _seen(uow, provider, key, now)


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
    key = note.key(provider_name)
    # read after the lock, in a statement of its own: it sees what a twin that held it committed
    found = uow.session.execute(
        _ATTEMPT_AND_NOTICE,
        {
            "invoice_id": payment_id,
            "n": number or row["method_attempt"],
            "notice_provider": provider_name,
            "key": key,
        },
    ).mappings()
    attempt = found.first()
    if attempt is None:
        raise BadRequest("UNKNOWN_ORDER", "this payment has no such charge attempt")
    attempt = dict(attempt)
    now = now_utc()
    if attempt.pop("notice_seen") and _seen(uow, provider_name, key, now):
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
    lines: list[dict] = field(default_factory=list)  # journal lines, stored with the notice

    def answer(self, result: str, outcome: str, flag: str | None = None) -> dict:
        notice = (self.provider, self.row["id"], self.key, self.body, outcome, self.now)
        _record(self.uow, *notice, self.lines)
        answer = {"payment_id": self.row["id"], "result": result, "status": self.row["status"]}
        return {**answer, "flag": flag} if flag else answer

    def flagged(self, flag: str, result: str = "flagged", *, new_fact: bool = False) -> dict:
        """Raise ``flag`` on the invoice once (a repeated wrong notice is not a new alert); a
        ``new_fact`` (money paid twice more) is alerted every time."""
        if new_fact or self.row["flag"] != flag:
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
            n.lines = journal_rows(
                ledger.entries_for_overpayment(
                    attempt["order_id"], row["id"], row["agency_id"], row["provider"], amount, now
                ),
                row["agency_id"],
            )
            return n.flagged(decision.flag, new_fact=True)
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
    # conditional on the status we read: even without a row lock exactly one writer wins
    won = n.uow.session.execute(
        _SETTLE,
        {**_v(values), "payment_id": row["id"], "was": row["status"], "v_flag": decision.flag},
    ).rowcount
    if not won:
        return n.answer("duplicate", "duplicate")
    if decision.flag:
        values["flag"] = decision.flag
    row.update(values)
    # this attempt paid, the others superseded (they stay payable at the provider: money on
    # them is an overpayment), in one statement carrying payment_succeeded on PostgreSQL
    n.uow.execute_with_event(
        _SETTLE_ATTEMPTS,
        {**_v(money), "invoice_id": row["id"], "attempt_id": attempt["id"]},
        "payment_succeeded",
        {**event_payload(row), **completion_facts(row)},
    )
    n.lines = journal_rows(  # stored with the notice (one statement on PostgreSQL)
        ledger.entries_for_payment(row["id"], row["agency_id"], row["provider"], amount, now),
        row["agency_id"],
    )
    if decision.flag:
        n.uow.add_event("payment_flagged", {**event_payload(row), "flag": decision.flag})
    return n.answer("applied", decision.flag or "applied", decision.flag)


def _bound(table, names: tuple[str, ...]) -> dict:
    """``SET name = :v_name`` for each name (a bound parameter may not be named as a column)."""
    return {name: bindparam(f"v_{name}", type_=table.c[name].type) for name in names}


def _v(values: dict) -> dict:
    return {f"v_{name}": value for name, value in values.items()}


# the settling writes of a paid notice, built once (values bound per execution)
_SETTLE = (
    update(payments)
    .where(payments.c.id == bindparam("payment_id"), payments.c.status == bindparam("was"))
    .values(
        {
            **_bound(
                payments,
                (
                    "status",
                    "updated_at",
                    "paid_at",
                    "paid_amount_idr",
                    "paid_attempt",
                    "receipt_number",
                    "provider_ref",
                    "method",
                ),
            ),
            "flag": func.coalesce(bindparam("v_flag", type_=payments.c.flag.type), payments.c.flag),
        }
    )
    .execution_options(**PREPARE)  # by key: planned once per connection
)
_THIS = charge_attempts.c.id == bindparam("attempt_id")


def _only_this(name: str):
    """``CASE WHEN id = :attempt_id THEN :v_name ELSE name END``"""
    column = charge_attempts.c[name]
    return case((_THIS, bindparam(f"v_{name}", type_=column.type)), else_=column)


_SETTLE_ATTEMPTS = (
    update(charge_attempts)
    .where(
        charge_attempts.c.payment_id == bindparam("invoice_id"),
        or_(
            and_(_THIS, charge_attempts.c.status != AttemptStatus.PAID.value),
            and_(~_THIS, charge_attempts.c.status.in_([s.value for s in attempts.OPEN])),
        ),
    )
    .values(
        status=case(
            (_THIS, bindparam("v_status", type_=charge_attempts.c.status.type)),
            else_=AttemptStatus.SUPERSEDED.value,
        ),
        paid_at=_only_this("paid_at"),
        paid_amount_idr=_only_this("paid_amount_idr"),
        provider_ref=_only_this("provider_ref"),
        updated_at=bindparam("v_updated_at", type_=charge_attempts.c.updated_at.type),
    )
)


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
