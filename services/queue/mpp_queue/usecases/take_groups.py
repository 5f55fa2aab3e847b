"""Take-tickets grouped in one transaction, set-based (group commit: mpp_chassis.grouping;
docs/decisions/0011-group-commit-take-ticket.md). PostgreSQL only."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam, func, insert, select

from mpp_contracts.errors import EXPECTED_ERRORS, NotFound
from mpp_queue.adapters.tables import services, tickets
from mpp_queue.domain import numbering

from .common import Settings, citizen_nik
from .issuing import _issued_payload, _issued_view, _ticket_row
from .places import PLACE_LOCK_CLASS, claim_places, quota_exhausted, return_places
from .tickets import group_places, load_ticket, ticket_view

_INSERT_TICKET = insert(tickets)
_NO_SERVICE = "no such service in the mall's catalogue"

# The group's services in one read, taking each line's place lock (shared, until commit: see
# places.reconcile_quotas) as the single take-ticket's first statement does.
_GROUP_SERVICES = select(
    services,
    func.pg_advisory_xact_lock_shared(
        PLACE_LOCK_CLASS, func.hashtext(services.c.id + bindparam("place_suffix"))
    ).label("place_held"),
).where(services.c.id.in_(bindparam("service_ids", expanding=True)))
_ISSUED_FOR_KEYS = select(tickets.c.request_key, tickets.c.id).where(
    tickets.c.request_key.in_(bindparam("request_keys", expanding=True))
)


@dataclass(frozen=True)
class TakeRequest:
    """One caller's take-ticket in a group: its own unit of work (its events carry its
    correlation id), its request, and the instant it arrived (its ticket's ``issued_at``)."""

    uow: object
    data: dict
    request_key: str | None
    now: datetime


def groups_take_tickets(uow) -> bool:
    """Take-tickets are grouped on PostgreSQL only: SQLite has one writer at a time, and its
    counters stay in the ticket's transaction, so a group there would need a savepoint each."""
    return uow.session.get_bind().dialect.name == "postgresql"


def _group_services(session, days: dict[int, object], requests: list[TakeRequest]) -> dict:
    """``(service id, day) -> service row`` for the active services asked for, one read per
    day in the group (one but at midnight), each line's place lock taken."""
    found: dict = {}
    for day in set(days.values()):
        ids = sorted({requests[i].data["service_id"] for i, d in days.items() if d == day})
        params = {"service_ids": ids, "place_suffix": f"/{day.isoformat()}"}
        for row in session.execute(_GROUP_SERVICES, params).mappings():
            if row["active"]:
                found[(row["id"], day)] = {column.name: row[column.name] for column in services.c}
    return found


def take_tickets(leader, settings: Settings, requests: list[TakeRequest]) -> list:
    """:func:`.issuing.take_ticket` for a group of callers, in ``leader``'s transaction,
    committed once, in a constant number of statements per line, not per ticket.

    The group's services are read once (the lines' place locks taken); each line's places and
    numbers are claimed in one statement, committed apart, in arrival order: those the quota
    leaves no room for are refused, each to its caller alone; the tickets go in with one
    multi-row insert and their events with another; each line's waiting tickets, open counters
    and serving times are read once for the positions of all its new tickets; then one commit.

    Returns one outcome per request, in order: its virtual ticket; the error it alone met before
    writing anything (unknown service, quota used up, invalid NIK), to raise; or ``None``: that
    caller takes its ticket alone, as without grouping (its request key is another's in this
    group, or a keyed request met a conflict, which alone answers it with the first arrival's
    ticket). Raises if the group could not be stored: its places go back and every caller goes
    alone.
    """
    outcomes: list = [None] * len(requests)
    session = leader.session
    pending: list[int] = []
    keys: dict[str, int] = {}
    for i, request in enumerate(requests):
        key = request.request_key
        if key is not None:
            if key in keys:  # its twin is in this group: alone, after the commit, it replays
                continue
            keys[key] = i
        pending.append(i)
    claimed: list[tuple[str, object, int]] = []
    takes: list[tuple[int, dict, dict]] = []  # (request, service, row), in claim order
    try:
        if keys:
            issued = session.execute(_ISSUED_FOR_KEYS, {"request_keys": sorted(keys)}).all()
            for key, ticket_id in issued:
                i = keys[key]
                pending.remove(i)
                ticket = load_ticket(session, ticket_id)
                outcomes[i] = ticket_view(session, settings, ticket, requests[i].now)
        days = {i: numbering.mall_day(requests[i].now, settings.mall_timezone) for i in pending}
        found = _group_services(session, days, requests) if pending else {}
        lines: dict[tuple, list[tuple[int, tuple]]] = {}
        for i in pending:
            line = (requests[i].data["service_id"], days[i])
            if line not in found:
                outcomes[i] = NotFound(
                    "SERVICE_NOT_FOUND", "no such service in the mall's catalogue"
                )
                continue
            try:
                nik = citizen_nik(requests[i].data.get("nik"), settings, days[i])
            except EXPECTED_ERRORS as exc:
                outcomes[i] = exc
                continue
            lines.setdefault(line, []).append((i, nik))
        for (service_id, day), members in lines.items():
            service = found[(service_id, day)]
            first, granted = claim_places(leader, service, day, len(members))
            if granted:
                claimed.append((service_id, day, granted))
            for j, (i, (nik_hash, nik_last4)) in enumerate(members):
                if j >= granted:  # a keyed request goes alone: a retry may find its ticket
                    outcomes[i] = None if requests[i].request_key else quota_exhausted(service)
                    continue
                row = _ticket_row(
                    service,
                    requests[i].now,
                    day,
                    first + j,
                    priority=requests[i].data.get("priority"),
                    nik_hash=nik_hash,
                    nik_last4=nik_last4,
                    phone=requests[i].data.get("phone"),
                    journey_id=None,
                    queued_at=None,
                    booking_id=None,
                    booked_slot_start=None,
                    transferred_from=None,
                    request_key=requests[i].request_key,
                )
                takes.append((i, service, row))
        if takes:
            session.execute(_INSERT_TICKET, [row for _, _, row in takes])
            leader.store_events(
                [
                    requests[i]
                    .uow.sharing(leader)
                    .event_row("ticket_issued", _issued_payload(row, service))
                    for i, service, row in takes
                ]
            )
            by_line: dict[tuple, list[tuple[int, dict, dict]]] = {}
            for take in takes:
                by_line.setdefault((take[2]["service_id"], take[2]["day"]), []).append(take)
            for line_takes in by_line.values():
                rows = [row for _, _, row in line_takes]
                nows = [requests[i].now for i, _, _ in line_takes]
                places = group_places(session, settings, rows, nows)
                for (i, service, row), place in zip(line_takes, places, strict=True):
                    view = _issued_view(row, service)
                    outcomes[i] = ticket_view(session, settings, view, requests[i].now, place=place)
    except Exception:
        leader.rollback()
        for service_id, day, granted in claimed:
            return_places(leader, service_id, day, granted)
        raise
    try:
        leader.commit()
    except Exception as exc:  # as a ticket alone, its caller gets the error (stored or not)
        leader.rollback()
        for i, _, _ in takes:
            outcomes[i] = exc
    return outcomes
