"""Who reads a ticket's invoice, decided by the payment service alone (decision 0022): the
holder of the ticket's access code (by the digest the queue's completion carries) and staff of
the ticket's agency; a stranger gets the queue's 404 for a ticket, never a hint that an invoice
exists. Where it cannot tell (no invoice; an invoice opened before digests), it says so and
the gateway asks the queue. On SQLite and PostgreSQL, through the use cases."""

from __future__ import annotations

import hashlib

import pytest

from mpp_contracts.errors import NotFound
from mpp_payment import charging, reading, usecases
from tests.payment.usecases.conftest import completed_ticket, plugged

CODE = "Q0dFLXRpY2tldC1jb2RlMQ"  # 22 base64url characters, as the queue's codes
DIGEST = hashlib.sha256(CODE.encode()).hexdigest()
OFFICER = {"role": "officer", "agency_id": "agency-1", "key_id": "k-officer"}
AGENCY_ADMIN = {"role": "agency_admin", "agency_id": "agency-1", "key_id": "k-admin"}
MALL_ADMIN = {"role": "mall_admin", "agency_id": None, "key_id": "k-mall"}
STRANGERS = (
    {"role": "officer", "agency_id": "agency-2", "key_id": "k-other-officer"},
    {"role": "agency_admin", "agency_id": "agency-2", "key_id": "k-other-admin"},
    {"role": "display", "agency_id": "agency-1", "key_id": "k-board"},
    {"role": "kiosk", "agency_id": "agency-1", "key_id": "k-kiosk"},
)


def invoiced(till, digest: str | None) -> dict:
    """A completed ticket of a paid service with its invoice open; ``digest`` as its
    ``ticket_completed`` carried it (None: from a queue before digests)."""
    till(usecases.upsert_service, plugged(fee_idr=15000))
    ticket = {**completed_ticket(fee_idr=15000), "access_digest": digest}
    if digest is None:
        del ticket["access_digest"]
    till(charging.open_invoice, till.settings, ticket, 15000)
    return ticket


def read(till, ticket: dict, code: str | None = None, actor: dict | None = None) -> dict:
    return till(reading.read_ticket_payment, ticket["ticket_id"], code, actor)


def test_the_code_holder_and_the_agency_staff_read_the_invoice(till):
    ticket = invoiced(till, DIGEST)
    expected = till(usecases.get_ticket_payment, ticket["ticket_id"])
    for code, actor in (
        (CODE, None),
        (None, OFFICER),
        (None, AGENCY_ADMIN),
        (None, MALL_ADMIN),
        (CODE, STRANGERS[0]),  # the code opens it whoever holds it, as at the queue
    ):
        assert read(till, ticket, code, actor) == {"verified": True, "payment": expected}


@pytest.mark.parametrize(
    ("code", "actor"),
    [(None, None), ("A" * 22, None), (CODE[:-1] + "x", None), ("", None)]
    + [(None, s) for s in STRANGERS]
    + [("A" * 22, s) for s in STRANGERS],
)
def test_a_stranger_gets_the_404_of_no_ticket(till, code, actor):
    ticket = invoiced(till, DIGEST)
    with pytest.raises(NotFound) as refused:
        read(till, ticket, code, actor)
    assert refused.value.code == "TICKET_NOT_FOUND"


def test_an_invoice_from_before_digests_is_left_to_the_queue_but_staff_still_read_it(till):
    """An invoice opened before completions carried the digest (a legacy row, or a completion
    from an older queue): the service cannot tell the code's holder, so it hands the decision
    back (the gateway asks the queue) — it never opens it to a code it cannot check."""
    ticket = invoiced(till, None)
    expected = till(usecases.get_ticket_payment, ticket["ticket_id"])
    for code in (CODE, "A" * 22, None):
        assert read(till, ticket, code) == {"verified": False, "payment": expected}
    assert read(till, ticket, None, STRANGERS[0]) == {"verified": False, "payment": expected}
    assert read(till, ticket, None, OFFICER) == {"verified": True, "payment": expected}


def test_a_ticket_without_an_invoice_is_left_to_the_queue(till):
    """No invoice (a free ticket, or not completed yet): whether the reader may learn that is
    the queue's to say, whatever code they send."""
    for code, actor in ((CODE, None), ("A" * 22, None), (None, OFFICER)):
        assert till(reading.read_ticket_payment, "no-such-ticket", code, actor) == {
            "verified": False,
            "payment": None,
        }
