"""Issue 20: the citizen's page reads the invoice (``GET /v1/tickets/{ticket}/payment``) in one
RPC, to the payment service, which checks the access code against the digest the queue's
completion carried, or the key's agency (docs/decisions/0022-invoice-read-in-one-rpc.md). The
old gateway asked the queue first (``get_ticket``) on every read. The answers stay the queue's:
the code's holder and the ticket's agency's staff read it, anyone else gets the 404 of no
ticket; an invoice opened before the digests still opens to its code, through the queue."""

from __future__ import annotations

import re

import pytest
import requests
import sqlalchemy as sa

from tests.gateway.e2e.test_gateway_tenancy_e2e import bearer, make_agency
from tests.gateway.e2e.test_gateway_ticket_capability_e2e import free_service
from tests.support.infra import wait_until
from tests.support.mall import MALL_ADMIN_KEY

pytestmark = pytest.mark.e2e


def calls(mall, service: str, entrypoint: str) -> float:
    """``entrypoint``'s calls so far, every outcome, from ``service``'s own /metrics."""
    (process,) = [p for p in mall.processes if p.name == service]
    text = requests.get(f"http://127.0.0.1:{process.port}/metrics", timeout=5).text
    pattern = (
        rf'^mpp_entrypoint_calls_total\{{entrypoint="{entrypoint}",outcome="[^"]+",'
        rf'service="{service}"\}} ([0-9.e+]+)$'
    )
    return sum(float(n) for n in re.findall(pattern, text, re.MULTILINE))


def invoice_reads(mall) -> float:
    """The payment service's reads of a ticket's invoice (``get_ticket_payment`` before issue
    20's change, ``read_ticket_payment`` since)."""
    return sum(calls(mall, "payment", e) for e in ("get_ticket_payment", "read_ticket_payment"))


def invoice(url: str, ticket_id: str, code: str | None = None, key: str | None = None):
    return requests.get(
        f"{url}/v1/tickets/{ticket_id}/payment",
        params={"code": code} if code is not None else {},
        headers=bearer(key) if key else {},
        timeout=10,
    )


def served(url: str, agency: dict, service: str) -> dict:
    """A citizen's ticket of ``service``, called, served and completed at the agency's counter."""
    ticket = requests.post(f"{url}/v1/tickets", json={"service_id": service}, timeout=10).json()
    officer = bearer(agency["keys"]["officer"])
    called = requests.post(f"{url}/v1/counters/{agency['counter']}/call-next", headers=officer)
    assert called.status_code == 200 and called.json()["id"] == ticket["id"], called.text
    for action in ("start", "complete"):
        done = requests.post(f"{url}/v1/tickets/{ticket['id']}/{action}", headers=officer)
        assert done.status_code == 200, done.text
    return ticket


@pytest.fixture(scope="module")
def floor(shared_mall):
    url = shared_mall.url
    a, b = make_agency(url, "INVA"), make_agency(url, "INVB")
    return {"url": url, "a": a, "b": b, "free": free_service(url, a)}


def invoiced(shared_mall, floor) -> tuple[dict, dict]:
    """A completed paid ticket and its invoice, once the payment service opened it."""
    ticket = served(floor["url"], floor["a"], floor["a"]["service"])
    bill = wait_until(
        lambda: (r := invoice(floor["url"], ticket["id"], ticket["access_code"])).ok and r.json(),
        timeout=30,
        message="the invoice",
    )
    return ticket, bill


def settled_queue_reads(mall, url: str, ticket: dict) -> float:
    """The queue's ``get_ticket`` count once the reads before now are counted: one more read
    of the ticket itself, waited for until the count shows it."""
    before = calls(mall, "queue", "get_ticket")
    assert requests.get(
        f"{url}/v1/tickets/{ticket['id']}", params={"code": ticket["access_code"]}, timeout=10
    ).ok
    return wait_until(
        lambda: (n := calls(mall, "queue", "get_ticket")) > before and n,
        timeout=10,
        message="the queue's count of ticket reads",
    )


def test_the_citizen_reads_the_invoice_in_one_rpc_without_the_queue(shared_mall, floor):
    url = floor["url"]
    ticket, bill = invoiced(shared_mall, floor)
    queue_reads = settled_queue_reads(shared_mall, url, ticket)
    payment_reads = invoice_reads(shared_mall)

    for _ in range(3):
        answer = invoice(url, ticket["id"], ticket["access_code"])
        assert answer.status_code == 200, answer.text
        assert answer.json()["id"] == bill["id"] and answer.json()["amount_idr"] == 10000

    # every read reached the payment service (its count is waited for: a worker counts its
    # call just after it answered), and not one reached the queue (the old gateway: 3 more)
    wait_until(
        lambda: invoice_reads(shared_mall) == payment_reads + 3,
        timeout=10,
        message="the payment service's three reads",
    )
    assert calls(shared_mall, "queue", "get_ticket") - queue_reads == 0


def test_the_code_or_the_agency_s_staff_open_the_invoice_and_nobody_else(shared_mall, floor):
    url, a, b = floor["url"], floor["a"], floor["b"]
    ticket, bill = invoiced(shared_mall, floor)
    tid, code = ticket["id"], ticket["access_code"]
    for code_sent, key in (
        (code, None),
        (None, a["keys"]["officer"]),
        (None, a["keys"]["agency_admin"]),
        (None, MALL_ADMIN_KEY),
        (code, b["keys"]["officer"]),  # the code opens it whoever holds it, as the ticket
    ):
        answer = invoice(url, tid, code_sent, key)
        assert answer.status_code == 200, (code_sent, key, answer.text)
        assert answer.json()["id"] == bill["id"]
    for code_sent, key in (
        (None, None),
        ("A" * 22, None),
        (code[:-1] + ("A" if code[-1] != "A" else "B"), None),
        (None, b["keys"]["officer"]),
        (None, b["keys"]["agency_admin"]),
        (None, a["keys"]["display"]),  # the agency's own board and kiosk are not staff
        (None, a["keys"]["kiosk"]),
    ):
        answer = invoice(url, tid, code_sent, key)
        assert answer.status_code == 404, (code_sent, key, answer.text)
        assert answer.json()["error"]["code"] == "TICKET_NOT_FOUND"
        assert bill["id"] not in answer.text
    # a key that is sent must be valid, and a malformed code is refused, as for the ticket
    assert invoice(url, tid, code, "not-a-key").status_code == 401
    assert invoice(url, tid, "not a code!").status_code == 422


def test_an_invoice_opened_before_digests_still_opens_to_its_code_through_the_queue(
    shared_mall, floor
):
    """An invoice whose completion carried no digest (opened before the upgrade, or from an
    older queue): the payment service cannot check the code, so the gateway asks the queue,
    as it always did; the citizen keeps their invoice and a stranger gains nothing."""
    url, a, b = floor["url"], floor["a"], floor["b"]
    ticket, bill = invoiced(shared_mall, floor)
    engine = sa.create_engine(shared_mall.db_urls["payment"])
    try:
        with engine.begin() as conn:
            forgot = conn.execute(
                sa.text("UPDATE payments SET access_digest = NULL WHERE id = :id"),
                {"id": bill["id"]},
            )
            assert forgot.rowcount == 1
    finally:
        engine.dispose()
    tid, code = ticket["id"], ticket["access_code"]
    queue_reads = settled_queue_reads(shared_mall, url, ticket)

    answer = invoice(url, tid, code)
    assert answer.status_code == 200, answer.text
    assert answer.json()["id"] == bill["id"]
    wait_until(  # the queue said who may read it
        lambda: calls(shared_mall, "queue", "get_ticket") == queue_reads + 1,
        timeout=10,
        message="the queue's check",
    )
    for key in (a["keys"]["officer"], MALL_ADMIN_KEY):  # staff: decided by payment alone
        assert invoice(url, tid, None, key).json()["id"] == bill["id"]
    for code_sent, key in (
        (None, None),
        ("A" * 22, None),
        (None, b["keys"]["officer"]),
        (None, a["keys"]["display"]),
    ):
        answer = invoice(url, tid, code_sent, key)
        assert answer.status_code == 404, (code_sent, key, answer.text)
        assert answer.json()["error"]["code"] == "TICKET_NOT_FOUND"
        assert bill["id"] not in answer.text


def test_a_ticket_without_an_invoice_tells_so_only_to_whom_may_read_it(shared_mall, floor):
    """A free ticket's reader with its code (or its agency's staff) learns there is no invoice
    (404 ``PAYMENT_NOT_FOUND``); a wrong code, none, or another agency's key gets the 404 of no
    ticket, and cannot tell a free ticket from a paid one."""
    url, a, b = floor["url"], floor["a"], floor["b"]
    ticket = served(url, a, floor["free"])
    tid = ticket["id"]
    for code_sent, key in ((ticket["access_code"], None), (None, a["keys"]["officer"])):
        answer = invoice(url, tid, code_sent, key)
        assert answer.status_code == 404, answer.text
        assert answer.json()["error"]["code"] == "PAYMENT_NOT_FOUND"
    for code_sent, key in ((None, None), ("A" * 22, None), (None, b["keys"]["officer"])):
        answer = invoice(url, tid, code_sent, key)
        assert answer.status_code == 404, answer.text
        assert answer.json()["error"]["code"] == "TICKET_NOT_FOUND"
    unknown = invoice(url, "no-such-ticket", ticket["access_code"])
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "TICKET_NOT_FOUND"
