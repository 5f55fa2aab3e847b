"""Who may read a ticket's invoice, decided without the queue.

The queue alone holds ``TICKET_CODE_KEY`` (a ticket's access code is an HMAC of its id under it).
Its ``ticket_completed`` event carries the SHA-256 of the code instead, stored with the invoice:
the code's holder presents the code, and its digest matches. The code carries 132 bits, so the
stored digest cannot be searched back to a code; it opens nothing by itself. Staff of the
ticket's agency (officers, agency admins) and the mall admin read the invoice without a code, as
they read the ticket at the queue.
"""

from __future__ import annotations

import hashlib
import hmac

# the roles the queue admits to a ticket of their own agency (the mall admin: to every one)
STAFF_ROLES = ("officer", "agency_admin")


def holds_code(digest: str | None, code: str | None) -> bool:
    """Constant-time check that ``code`` is the one whose SHA-256 (hex) is ``digest``."""
    if not code or not digest:
        return False
    given = hashlib.sha256(code.encode()).hexdigest()
    return hmac.compare_digest(given.encode(), digest.encode())
