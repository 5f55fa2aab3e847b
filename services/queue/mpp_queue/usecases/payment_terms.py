"""The payment service's terms per service version, kept to route completions.

Whether a completed ticket needs paying is the payment service's fact (docs/architecture.md).
It publishes its verdict for each version of a service it takes into its copy of the catalogue
(``payment_terms_set``); the queue keeps the latest and, at completion, compares the version it is
for with the version in force. When they agree and the verdict is "not required", the
completion is published as ``ticket_completed.free``: the payment service, bound to
``ticket_completed`` only, never sees it, and the rating service (bound to
``ticket_completed.free``) invites at once. Otherwise it is ``ticket_completed`` and the
payment service decides per ticket (docs/decisions/0013-free-completions-routing.md).
"""

from __future__ import annotations

from sqlalchemy import bindparam, or_, select, update

from mpp_queue.adapters.tables import services

FREE_COMPLETION = "ticket_completed.free"

_TERMS_AT_COMPLETION = select(
    services.c.version, services.c.payment_terms_version, services.c.payment_required
).where(services.c.id == bindparam("service_id"))

_SET_TERMS = (
    update(services)
    .where(
        services.c.id == bindparam("service_id"),
        or_(
            services.c.payment_terms_version.is_(None),
            services.c.payment_terms_version < bindparam("terms_version"),
        ),
    )
    .values(
        payment_terms_version=bindparam("terms_version"),
        payment_required=bindparam("required"),
    )
)


def set_payment_terms(uow, payload: dict) -> bool:
    """Keep the payment service's verdict for one version of a service, unless a newer one is
    kept already (its events arrive in any order). Terms without a version (never sent by this
    release) cannot be compared with the version in force, and are not kept. True if kept."""
    version = payload.get("version")
    if version is None:
        return False
    changed = uow.session.execute(
        _SET_TERMS,
        {
            "service_id": payload["service_id"],
            "terms_version": version,
            "required": payload["payment_required"],
        },
    ).rowcount
    return bool(changed)


def completion_route(
    session, service_id: str, ticket: dict | None = None
) -> tuple[str | None, dict]:
    """The routing key of a completion of ``service_id`` now (None: the event type) and the
    fields it adds to the event: read in the completion's transaction, so "in force" is the
    version its change saw. A ``ticket`` read with its service's version and terms
    (``tickets.WITH_NAMES``, in that transaction) carries them: no statement of its own."""
    if ticket is not None and "service_version" in ticket:
        version, terms = ticket["service_version"], ticket["payment_terms_version"]
        required = ticket["payment_required"]
    else:
        row = session.execute(_TERMS_AT_COMPLETION, {"service_id": service_id}).first()
        if row is None:
            return None, {}
        version, terms, required = row.version, row.payment_terms_version, row.payment_required
    if required is not False or terms != version:
        return None, {}
    return FREE_COMPLETION, {"payment_required": False, "payment_terms_version": version}
