"""A service's daily walk-in places: claimed with the line's next number, returned when a
ticket is not stored, and reconciled when a killed process left one taken with no ticket."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import bindparam, text, update

from mpp_chassis.sequences import next_in_sequence
from mpp_contracts.errors import Conflict
from mpp_queue.adapters.tables import service_day_counts, ticket_sequences
from mpp_queue.domain import numbering

from .common import Settings, now_utc

_CLAIM_PLACE_PG = text(
    """
    WITH place AS (
        INSERT INTO service_day_counts (service_id, day, issued) VALUES (:service_id, :day, 1)
        ON CONFLICT (service_id, day) DO UPDATE SET issued = service_day_counts.issued + 1
        WHERE CAST(:quota AS INTEGER) IS NULL OR service_day_counts.issued < :quota
        RETURNING issued
    )
    INSERT INTO ticket_sequences (prefix, day, last_seq) SELECT :prefix, :day, 1 FROM place
    ON CONFLICT (prefix, day) DO UPDATE SET last_seq = ticket_sequences.last_seq + 1
    RETURNING last_seq
    """
).bindparams(bindparam("day", type_=service_day_counts.c.day.type))

RETURN_PLACE = (
    update(service_day_counts)
    .where(
        service_day_counts.c.service_id == bindparam("place_service_id"),
        service_day_counts.c.day == bindparam("place_day"),
        service_day_counts.c.issued > 0,
    )
    .values(issued=service_day_counts.c.issued - 1)
)


# A group's places of one line in one statement (take-tickets grouped, .take_groups): ``k``
# places taken at once when the quota leaves room for at least one, and the line's numbers
# advanced by as many as fit. Without the count before the update (PostgreSQL 15 has no
# ``RETURNING old``) the places may overshoot the quota by what did not fit: ``granted`` says
# how many fit, and the caller gives the rest back at once (:data:`RETURN_PLACES`). Meanwhile
# the line reads as full, which it is.
_CLAIM_PLACES_PG = text(
    """
    WITH place AS (
        INSERT INTO service_day_counts (service_id, day, issued) VALUES (:service_id, :day, :k)
        ON CONFLICT (service_id, day) DO UPDATE SET issued = service_day_counts.issued + :k
        WHERE CAST(:quota AS INTEGER) IS NULL OR service_day_counts.issued < :quota
        RETURNING issued
    ), granted AS (
        SELECT CAST(:k AS INTEGER) - GREATEST(issued - COALESCE(CAST(:quota AS INTEGER), issued), 0)
            AS n
        FROM place
    )
    INSERT INTO ticket_sequences (prefix, day, last_seq) SELECT :prefix, :day, n FROM granted
    ON CONFLICT (prefix, day) DO UPDATE SET last_seq = ticket_sequences.last_seq + EXCLUDED.last_seq
    RETURNING last_seq, (SELECT n FROM granted)
    """
).bindparams(bindparam("day", type_=service_day_counts.c.day.type))

RETURN_PLACES = (
    update(service_day_counts)
    .where(
        service_day_counts.c.service_id == bindparam("place_service_id"),
        service_day_counts.c.day == bindparam("place_day"),
        service_day_counts.c.issued >= bindparam("places"),
    )
    .values(issued=service_day_counts.c.issued - bindparam("places"))
)


def claim_places(uow, service: dict, day, k: int) -> tuple[int, int]:
    """Take up to ``k`` of today's walk-in places of a line and as many numbers in one statement
    committed on its own (PostgreSQL, with the line's place lock held: :func:`claim_place`).
    Returns ``(first sequence value, how many)``: the places the quota left, in order; ``(0,
    0)`` when it is used up. What overshot the quota goes back before this returns."""
    rows = uow.execute_now(
        _CLAIM_PLACES_PG,
        {
            "service_id": service["id"],
            "day": day,
            "prefix": service["prefix"],
            "quota": service["daily_quota"],
            "k": k,
        },
    )
    if not rows:
        return 0, 0
    last, granted = rows[0]
    if granted < k:
        return_places(uow, service["id"], day, k - granted)
    return last - granted + 1, granted


def return_places(uow, service_id: str, day, places: int) -> None:
    """Places claimed apart whose tickets were not stored go back (their numbers stay unused)."""
    uow.execute_now(
        RETURN_PLACES, {"place_service_id": service_id, "place_day": day, "places": places}
    )


def quota_exhausted(service: dict) -> Conflict:
    return Conflict(
        "QUOTA_EXHAUSTED",
        "today's quota for this service is used up",
        {"daily_quota": service["daily_quota"]},
    )


# A take-ticket holds this lock (shared) from before its place is claimed until its ticket
# commits or rolls back; :func:`reconcile_quotas` recounts a line only while it can hold the lock
# alone, i.e. while no ticket of that line is between its claim and its commit.
PLACE_LOCK_CLASS = 0x4D5051  # "MPQ": the first key of the two-key advisory lock
_HOLD_PLACES = text(
    "SELECT pg_advisory_xact_lock_shared(:lock_class, hashtext(:place))"
).bindparams(lock_class=PLACE_LOCK_CLASS)
_TRY_RECOUNT = text("SELECT pg_try_advisory_xact_lock(:lock_class, hashtext(:place))").bindparams(
    lock_class=PLACE_LOCK_CLASS
)


def place_key(service_id: str, day) -> str:
    return f"{service_id}/{day.isoformat()}"


def claim_place(uow, service: dict, day, *, place_held: bool = False) -> tuple[int, bool]:
    """Take one of today's walk-in places and the line's next number, or refuse (409) when the
    service's daily quota is used up. Returns ``(sequence value, claimed apart)``.

    Both increments are atomic, so concurrent kiosks (even in two processes) never share a number
    nor both take the last place. The two counter rows are the hot rows of a busy line: on
    PostgreSQL they are taken in one statement committed on its own (``execute_now``), so their
    locks last that statement, not the ticket's whole transaction; "claimed apart" tells the
    caller to return the place if the ticket is then not stored (its number stays unused, a gap
    like a voided paper ticket). SQLite has one writer at a time: there both stay in the ticket's
    transaction and a refusal rolls them back. ``place_held``: the caller took the place lock
    already (take-ticket's first statement, ``_TAKE_PRELUDE_PG``).
    """
    session = uow.session
    if session.get_bind().dialect.name == "postgresql":
        if not place_held:
            session.execute(_HOLD_PLACES, {"place": place_key(service["id"], day)})
        rows = uow.execute_now(
            _CLAIM_PLACE_PG,
            {
                "service_id": service["id"],
                "day": day,
                "prefix": service["prefix"],
                "quota": service["daily_quota"],
            },
        )
        if not rows:
            raise quota_exhausted(service)
        return rows[0][0], True
    issued = next_in_sequence(
        session, service_day_counts, {"service_id": service["id"], "day": day}, "issued"
    )
    if service["daily_quota"] and issued > service["daily_quota"]:
        raise quota_exhausted(service)
    seq = next_in_sequence(session, ticket_sequences, {"prefix": service["prefix"], "day": day})
    return seq, False


# walk-in tickets of one line and day: the ones that took a place (not a booking's ticket, an
# on-time one or a late check-in's, nor a transfer's: :func:`transfer_ticket`)
_WALK_INS = """
    SELECT count(*) FROM tickets t
    WHERE t.service_id = {service} AND t.day = {day}
      AND t.booking_id IS NULL AND t.transferred_from IS NULL
      AND t.id NOT IN (
        SELECT b.ticket_id FROM bookings b
        WHERE b.service_id = {service} AND b.ticket_id IS NOT NULL
      )
"""
_DRIFTED = text(
    "SELECT c.service_id, c.issued, ("  # noqa: S608 - no input in the text
    + _WALK_INS.format(service="c.service_id", day="c.day")
    + ") AS walk_ins FROM service_day_counts c WHERE c.day = :day"
).bindparams(bindparam("day", type_=service_day_counts.c.day.type))
_RECOUNT = text(
    "UPDATE service_day_counts SET issued = ("  # noqa: S608 - no input in the text
    + _WALK_INS.format(service=":service_id", day=":day")
    + ") WHERE service_id = :service_id AND day = :day RETURNING issued"
).bindparams(bindparam("day", type_=service_day_counts.c.day.type))


def reconcile_quotas(uow, settings: Settings, now: datetime | None = None) -> int:
    """Set today's walk-in count of every line whose count drifted from its tickets back to the
    tickets issued; returns how many lines were corrected.

    On PostgreSQL a place is claimed in its own transaction (:func:`claim_place`): a process
    killed, or a database restarted, between that claim and the ticket's commit keeps the place
    taken with no ticket for it, and the line would refuse citizens before its quota. A line is
    recounted only while no take-ticket holds its place lock (one that does is mid-way and
    counted already); a busy line is left for the next sweep.
    """
    session = uow.session
    day = numbering.mall_day(now or now_utc(), settings.mall_timezone)
    locking = session.get_bind().dialect.name == "postgresql"
    corrected = 0
    for line in session.execute(_DRIFTED, {"day": day}).all():
        if line.issued == line.walk_ins:
            continue
        place = place_key(line.service_id, day)
        if locking and not session.execute(_TRY_RECOUNT, {"place": place}).scalar_one():
            continue
        issued = session.execute(_RECOUNT, {"service_id": line.service_id, "day": day}).scalar()
        if issued != line.issued:
            corrected += 1
    return corrected
