"""One verdict per token: a rating submitted once, a complaint opened with it when asked."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import bindparam, select, text, update

from mpp_chassis.prepared import PREPARE
from mpp_contracts.errors import Conflict, NotFound, ValidationFailed
from mpp_rating.adapters.tables import (
    complaints,
    invitations,
    ratings,
)
from mpp_rating.domain import complaints as complaint_rules
from mpp_rating.domain import invitations as rules
from mpp_rating.domain.aggregates import Rating
from mpp_rating.domain.validation import validate_submission
from mpp_rating.usecases.common import Settings, now_utc
from mpp_rating.usecases.complaints import open_complaint
from mpp_rating.usecases.readmodel import fold_rating


def _answer(rating: dict, complaint_id: str | None) -> dict:
    submitted_at = rating["submitted_at"]
    return {
        "id": rating["id"],
        "ticket_id": rating["ticket_id"],
        "stars": rating["stars"],
        "answers": rating["answers"],
        "comment": rating["comment"],
        "submitted_at": submitted_at.isoformat(),
        "complaint_id": complaint_id,
    }


_INVITATION = (  # a read by key, planned once per connection (mpp_chassis.prepared)
    select(invitations)
    .where(invitations.c.token == bindparam("token"))
    .execution_options(**PREPARE)
)
_USE_TOKEN = (
    update(invitations)
    .where(invitations.c.ticket_id == bindparam("ticket"), invitations.c.used_at.is_(None))
    .values(used_at=bindparam("now"))
)
_RATING_COLUMNS = (
    "id",
    "ticket_id",
    "agency_id",
    "service_id",
    "counter_id",
    "officer_id",
    "stars",
    "answers",
    "comment",
    "submitted_at",
    "flagged",
    "request_key",
)
# one round trip where a savepoint around a plain insert took three; text, built once (an
# ON CONFLICT construct is compiled anew on every call)
_INSERT_RATING = text(
    f"INSERT INTO ratings ({', '.join(_RATING_COLUMNS)}) "  # noqa: S608 - a Table's names
    f"VALUES ({', '.join(':' + c for c in _RATING_COLUMNS)}) ON CONFLICT DO NOTHING RETURNING id"
).bindparams(*(bindparam(c, type_=ratings.c[c].type) for c in _RATING_COLUMNS))

_RATING_FOR_REQUEST = (
    select(ratings, complaints.c.id.label("complaint_id"))
    .outerjoin(complaints, complaints.c.rating_id == ratings.c.id)
    .where(ratings.c.request_key == bindparam("request_key"))
)


def rating_for_request(session, request_key: str) -> dict | None:
    """The answer a keyed submission already got, if it was stored."""
    row = session.execute(_RATING_FOR_REQUEST, {"request_key": request_key}).mappings().first()
    return None if row is None else _answer(row, row["complaint_id"])


def submit_rating(
    uow,
    settings: Settings,
    data: dict,
    now: datetime | None = None,
    request_key: str | None = None,
) -> dict:
    """Store one rating with a one-time token; opens a complaint for 1–2 stars or a flag; folds
    it into the read model (decision 0030) and emits ``rating_submitted``, in one transaction.

    The token is consumed by a conditional update (``used_at IS NULL``): of two submissions at the
    same instant, the database lets exactly one update the row; the other sees 0 rows and gets 409.
    The unique ticket id on ``ratings`` is the second lock on the same door.

    With a ``request_key`` (the gateway's hash of the client's ``Idempotency-Key``, its scope and
    the body) the same request is answered with the rating it stored, however often it arrives:
    a retry that took over the key of a gateway that died mid-request gets the rating, not
    "token used", also when both arrive at once (the second finds the token used, by the first).
    """
    session = uow.session
    row = session.execute(_INVITATION, {"token": data["token"]}).mappings().first()
    if row is None:
        raise NotFound("TOKEN_NOT_FOUND", "no rating invitation with this token")
    now = now or now_utc()
    status = rules.token_usable(row["expires_at"], row["used_at"], now)
    answers = dict(data.get("answers") or {})
    flagged = bool(data.get("flag_complaint"))
    rating = {
        "id": str(uuid.uuid4()),
        "ticket_id": row["ticket_id"],
        "agency_id": row["agency_id"],
        "service_id": row["service_id"],
        "counter_id": row["counter_id"],
        "officer_id": row["officer_id"],
        "stars": data.get("stars"),
        "answers": answers,
        "comment": data.get("comment"),
        "submitted_at": now,
        "flagged": flagged,
    }
    event_id = None
    if status == "ok":
        problems = validate_submission(data.get("stars"), answers, data.get("comment"))
        if problems:
            raise ValidationFailed(
                "VALIDATION_FAILED", "invalid fields", {p.field: [p.message] for p in problems}
            )
        # the token's use carries ``rating_submitted`` (one statement on PostgreSQL): stored
        # only if this submission used it, rolled back with it if the rating is refused below
        event_id = uow.execute_with_event(
            _USE_TOKEN,
            {"ticket": row["ticket_id"], "now": now},
            "rating_submitted",
            _submitted(rating),
            changed_only=True,
        )
        if event_id is None:  # another submission with the same token won the race
            status = "used"
    if status != "ok":
        stored = status == "used" and request_key and rating_for_request(session, request_key)
        if stored:
            return stored  # this request's rating, stored by an earlier or a concurrent attempt
        raise Conflict(f"TOKEN_{status.upper()}", f"this rating token is {status}")
    if session.execute(_INSERT_RATING, {**rating, "request_key": request_key}).first() is None:
        raise Conflict("TOKEN_USED", "this rating token is used")  # its ticket is rated
    complaint_id = None
    if complaint_rules.should_open_complaint(rating["stars"], flagged):
        complaint_id = open_complaint(uow, rating, "flagged" if flagged else "low_stars", now)
    # last: the read model's busiest rows (the agency's day, week, month) are locked to commit
    fold_rating(uow, settings, _folded(rating, answers), event_id)
    return _answer(rating, complaint_id)


_SUBMITTED = (
    "ticket_id",
    "agency_id",
    "service_id",
    "counter_id",
    "officer_id",
    "stars",
    "answers",
    "submitted_at",
    "flagged",
)


def _submitted(rating: dict) -> dict:
    """``rating_submitted``'s payload."""
    return {
        "rating_id": rating["id"],
        **{k: rating[k] for k in _SUBMITTED},
        "has_comment": bool(rating["comment"]),
    }


def _folded(rating: dict, answers: dict) -> Rating:
    return Rating(
        rating["id"],
        rating["agency_id"],
        rating["service_id"],
        rating["counter_id"],
        rating["officer_id"],
        rating["stars"],
        answers,
        rating["submitted_at"],
    )
