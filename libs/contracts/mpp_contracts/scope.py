"""Who may act for an agency: the one rule, for the gateway and every service.

An actor is the plain dict the gateway passes with a command (``role``, ``agency_id``, ``key_id``),
or None when no key was given. The mall admin acts for every agency; a key of one of ``roles``
acts for its own agency only; nobody acts anonymously. Each resource names its own refusal
(``code``: FORBIDDEN, WRONG_AGENCY, OUT_OF_SCOPE are part of the API), never its own rule.
"""

from __future__ import annotations

from mpp_contracts.errors import Forbidden

MALL_ADMIN = "mall_admin"


def require_agency_scope(
    actor: dict | None,
    agency_id: str | None,
    roles: tuple[str, ...],
    *,
    code: str = "FORBIDDEN",
    message: str = "this key belongs to another agency",
    anonymous: str = "an agency's key is needed",
) -> None:
    """Return if ``actor`` may act for ``agency_id`` (None: for no agency in particular, so the
    role alone decides); else raise :class:`Forbidden` — ``FORBIDDEN`` for no actor or a role
    outside ``roles``, ``code`` for a key of another agency."""
    if actor is None:
        raise Forbidden("FORBIDDEN", anonymous)
    role = actor.get("role")
    if role == MALL_ADMIN:
        return
    if role not in roles:
        raise Forbidden("FORBIDDEN", f"role {role} may not do this")
    if agency_id is not None and actor.get("agency_id") != agency_id:
        raise Forbidden(code, message)
