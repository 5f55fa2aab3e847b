"""The gateway's unit of work, opened only by the requests that use its database."""

from __future__ import annotations

from mpp_chassis.db import Database, UnitOfWork


class UnitOfWorkOnFirstUse:
    """Stands for a worker's :class:`~mpp_chassis.db.UnitOfWork` and builds it, with its
    session, the first time one of its attributes is asked for."""

    __slots__ = ("_build", "_built")

    def __init__(self, build) -> None:
        self._build = build
        self._built: UnitOfWork | None = None

    def __getattr__(self, name: str):
        if self._built is None:
            self._built = self._build()
        return getattr(self._built, name)


class GatewayDatabase(Database):
    """The chassis' :class:`~mpp_chassis.db.Database`, whose unit of work (and SQLAlchemy
    session) is made only when a worker first uses it. Most gateway requests never do (a key
    known to this process, a public route, no ``Idempotency-Key``): building and closing a
    session for each of them was ~4 % of the gateway's CPU. The worker's teardown closes the
    session as before when one was made, and has nothing to close otherwise."""

    def get_dependency(self, worker_ctx) -> UnitOfWorkOnFirstUse:
        return UnitOfWorkOnFirstUse(lambda: super(GatewayDatabase, self).get_dependency(worker_ctx))
