"""A ticket's access code: the citizen's capability over their own ticket.

Whoever holds the code reads the ticket's private parts (the rating invitation's token, the
payment) and follows it through a transfer; whoever merely knows the ticket's id does not (a
ticket id appears to officers, agencies' systems and logs). The code is an HMAC of the ticket id
under the queue's ``TICKET_CODE_KEY``: nothing is stored, a retried take-ticket recomputes the
same code, and a code for one ticket says nothing about another. 22 base64url characters carry
132 bits.

The payment service checks a code against the invoice without the key: each ``ticket_completed``
carries :func:`code_digest`, a SHA-256 of the code (docs/decisions/0022-invoice-read-in-one-rpc.md).
"""

from __future__ import annotations

import base64
import hashlib
import hmac

CODE_LENGTH = 22


def access_code(key: str, ticket_id: str) -> str:
    digest = hmac.new(key.encode(), ticket_id.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode()[:CODE_LENGTH]


def holds_code(key: str, ticket_id: str, code: str | None) -> bool:
    """Constant-time check that ``code`` opens ``ticket_id``."""
    if not code:
        return False
    return hmac.compare_digest(access_code(key, ticket_id).encode(), code.encode())


def code_digest(key: str, ticket_id: str) -> str:
    """SHA-256 (hex) of the ticket's access code: what ``ticket_completed`` carries so that the
    payment service can tell the code's holder without ever holding ``TICKET_CODE_KEY``. The
    code is 132 bits of an HMAC output, so no search recovers it from its digest; and a digest
    opens nothing by itself (the reader must present the code)."""
    return hashlib.sha256(access_code(key, ticket_id).encode()).hexdigest()
