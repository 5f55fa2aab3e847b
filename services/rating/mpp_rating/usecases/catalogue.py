"""The rating service's copy of agency names, kept from the queue's events (leaderboard)."""

from __future__ import annotations

from sqlalchemy import insert, update

from mpp_rating.adapters.tables import (
    agencies,
)


def on_agency_registered(uow, payload: dict) -> None:
    """Keep the agency's code and name (for the leaderboard) without ever calling the queue."""
    values = {"code": payload["code"], "name": payload["name"]}
    session = uow.session
    changed = session.execute(
        update(agencies).where(agencies.c.agency_id == payload["agency_id"]).values(**values)
    ).rowcount
    if not changed:
        session.execute(insert(agencies).values(agency_id=payload["agency_id"], **values))
