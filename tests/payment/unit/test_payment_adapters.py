"""Provider adapters against recorded request/response pairs in the providers' documented formats
(tests/payment/fixtures; no internet): the exact requests we send, how we read the answers, retries
through the one HTTP client, and notifications authenticated or refused."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests

from mpp_contracts.errors import BadRequest, Conflict, ServiceUnavailable, Unauthorized
from mpp_payment.adapters.http import ProviderHttp, ProviderUnavailable
from mpp_payment.adapters.providers import ChargeRequest, MidtransProvider, XenditProvider
from mpp_payment.domain import qris, signatures

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
ORDER = "11111111-2222-3333-4444-555555555555-1"
ATTEMPT_KEY = "9f0c2b1e-6a4d-4c7e-8b3a-1d2e3f4a5b6c"  # the charge attempt's id


def fixture(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text())


class Replay:
    """A transport that plays back recorded exchanges in order and checks each request."""

    def __init__(self, *exchanges: dict) -> None:
        self.exchanges = list(exchanges)
        self.sent: list[dict] = []

    def __call__(self, method, url, headers, body, timeout):
        assert self.exchanges, f"unexpected request {method} {url}"
        expected = self.exchanges.pop(0)
        request = expected["request"]
        sent = {"method": method, "url": url, "headers": headers, "timeout": timeout}
        sent["body"] = json.loads(body) if body else None
        self.sent.append(sent)
        assert method == request["method"]
        assert url == "https://provider.test" + request["path"]
        assert sent["body"] == request.get("body")
        for name, value in request.get("headers", {}).items():
            assert headers[name] == value
        if "raise" in expected:
            raise getattr(requests, expected["raise"])("recorded failure")
        response = expected["response"]
        return response["status"], json.dumps(response["body"]).encode()


def http(replay: Replay, retries: int = 2) -> ProviderHttp:
    return ProviderHttp(
        "https://provider.test",
        username="SB-Mid-server-TEST",
        transport=replay,
        retries=retries,
        sleep=lambda s: None,
    )


def charge_request(method: str, order: str = ORDER, minutes: int = 30) -> ChargeRequest:
    return ChargeRequest(
        payment_id=order[:36],
        order_id=order,
        amount_idr=50000,
        method=method,
        expires_at=datetime.now(UTC) + timedelta(minutes=minutes),
        minutes=minutes,
        description="PASPOR P-001",
        qris_fields={},
        bill_number="P001",
        idempotency_key=ATTEMPT_KEY,
    )


def test_midtrans_qris_charge_retries_a_503_and_checks_the_qr_it_gets():
    replay = Replay(*fixture("midtrans_charge_qris.json")["exchanges"])
    provider = MidtransProvider(http(replay), "SB-Mid-server-TEST")
    charge = provider.charge(charge_request("qris"))
    assert len(replay.sent) == 2 and not replay.exchanges  # one retry after the 503
    assert replay.sent[0]["headers"]["Authorization"].startswith("Basic ")
    assert replay.sent[0]["timeout"] == (3.05, 10.0)
    assert qris.parse_qris(charge.qris_payload).amount_idr == 50000
    assert charge.provider_ref == "0b8c4d8a-3f5e-4a7b-9d7e-2a1f7c0e6b11"


def test_midtrans_qris_with_another_amount_is_refused():
    exchanges = fixture("midtrans_charge_qris.json")["exchanges"][1:]
    replay = Replay(*exchanges)
    provider = MidtransProvider(http(replay), "k")
    wrong = ChargeRequest(**{**charge_request("qris").__dict__, "amount_idr": 60000})
    exchanges[0]["request"]["body"]["transaction_details"]["gross_amount"] = 60000
    with pytest.raises(ServiceUnavailable) as info:
        provider.charge(wrong)
    assert info.value.code == "PROVIDER_BAD_QRIS"


def test_midtrans_virtual_account_charge():
    replay = Replay(*fixture("midtrans_charge_va.json")["exchanges"])
    provider = MidtransProvider(http(replay), "k")
    charge = provider.charge(
        charge_request("virtual_account", order=ORDER[:-1] + "2", minutes=1440)
    )
    assert charge.va_number == "12345678901" and charge.qris_payload is None


def test_midtrans_refund_and_status_views():
    replay = Replay(*fixture("midtrans_refund.json")["exchanges"])
    provider = MidtransProvider(http(replay), "k")
    done = provider.refund(ORDER, None, 20000, "refund-key-1")
    assert done.provider_ref == "42" and done.status == "succeeded"
    assert provider.view(ORDER, None) == ("partially_refunded", 50000)
    assert provider.view("unknown-order-1", None) is None


def test_http_client_gives_up_after_bounded_retries_and_never_retries_unsafe_posts():
    timeout = {"request": {"method": "GET", "path": "/v2/x/status"}, "raise": "Timeout"}
    replay = Replay(timeout, timeout, timeout)
    with pytest.raises(ProviderUnavailable):
        http(replay, retries=2).request("GET", "/v2/x/status")
    assert len(replay.sent) == 3
    post = {"request": {"method": "POST", "path": "/v1/x", "body": {}}, "raise": "ConnectionError"}
    replay = Replay(post, post)
    with pytest.raises(ProviderUnavailable):
        http(replay).request("POST", "/v1/x", {})
    assert len(replay.sent) == 1  # a POST without an idempotency guarantee is sent once


def test_http_client_returns_4xx_without_retrying():
    replay = Replay(
        {"request": {"method": "GET", "path": "/v2/y"}, "response": {"status": 401, "body": {}}}
    )
    assert http(replay).request("GET", "/v2/y").status == 401
    assert len(replay.sent) == 1


def midtrans_notice(**changes) -> tuple[dict, bytes]:
    recorded = fixture("midtrans_notification_settlement.json")
    body = {**recorded["body"], **changes}
    body["signature_key"] = signatures.midtrans_signature(
        body["order_id"], body["status_code"], body["gross_amount"], recorded["server_key"]
    )
    return body, json.dumps(body).encode()


def midtrans_status(order: str = ORDER, **fields) -> dict:
    """One recorded exchange of the get-status API (what Midtrans says about the order)."""
    body = {
        "status_code": "200",
        "transaction_id": "0b8c4d8a-3f5e-4a7b-9d7e-2a1f7c0e6b11",
        "order_id": order,
        "gross_amount": "50000.00",
        "payment_type": "qris",
        "transaction_status": "settlement",
        "fraud_status": "accept",
        **fields,
    }
    return {
        "request": {"method": "GET", "path": f"/v2/{order}/status"},
        "response": {"status": 200, "body": body},
    }


def test_midtrans_notification_verified_then_state_asked_from_get_status():
    replay = Replay(midtrans_status())
    provider = MidtransProvider(http(replay), "SB-Mid-server-TEST")
    _, raw = midtrans_notice()
    note = provider.read_notification({}, raw)
    assert (note.order_id, note.kind, note.amount_idr) == (ORDER, "paid", 50000)
    assert replay.sent[0]["headers"]["Authorization"].startswith("Basic ") and not replay.exchanges
    body, _ = midtrans_notice()
    body["gross_amount"] = "5000.00"  # tampered after signing
    with pytest.raises(Unauthorized):
        provider.read_notification({}, json.dumps(body).encode())
    with pytest.raises(Unauthorized):  # no server key configured: fail closed
        MidtransProvider(http(Replay()), "").read_notification({}, raw)
    _, unknown = midtrans_notice(transaction_status="chargeback")
    with pytest.raises(BadRequest):
        provider.read_notification({}, unknown)


def test_midtrans_the_status_api_decides_not_the_notice():
    """A genuinely signed settlement notice while Midtrans' own answer is still pending: pending.
    The amount is the API's too."""
    replay = Replay(midtrans_status(transaction_status="pending", status_code="201"))
    note = MidtransProvider(http(replay), "SB-Mid-server-TEST").read_notification(
        {}, midtrans_notice()[1]
    )
    assert (note.kind, note.provider_status, note.amount_idr) == ("pending", "pending", 50000)
    card = Replay(midtrans_status(transaction_status="capture", fraud_status="challenge"))
    note = MidtransProvider(http(card), "SB-Mid-server-TEST").read_notification(
        {}, midtrans_notice()[1]
    )
    assert note.kind == "pending"  # a card under fraud review is not money yet


@pytest.mark.parametrize(
    ("word", "code"),
    [("settlement", "201"), ("capture", "202"), ("pending", "200"), ("expire", "200")],
)
def test_midtrans_a_status_word_that_does_not_go_with_its_signed_code_is_refused(word, code):
    replay = Replay()  # refused before any call to Midtrans
    provider = MidtransProvider(http(replay), "SB-Mid-server-TEST")
    _, raw = midtrans_notice(status_code=code)
    edited = {**json.loads(raw), "transaction_status": word}
    with pytest.raises(BadRequest) as info:
        provider.read_notification({}, json.dumps(edited).encode())
    assert info.value.code == "INCONSISTENT_NOTIFICATION" and not replay.sent


def test_midtrans_unknown_order_or_unreadable_answer_applies_nothing():
    missing = midtrans_status()
    missing["response"] = {"status": 404, "body": {"status_code": "404"}}
    with pytest.raises(BadRequest) as info:
        MidtransProvider(http(Replay(missing)), "SB-Mid-server-TEST").read_notification(
            {}, midtrans_notice()[1]
        )
    assert info.value.code == "UNKNOWN_ORDER"
    for answer in (midtrans_status(gross_amount=None), midtrans_status(order_id="another-1")):
        answer["request"]["path"] = f"/v2/{ORDER}/status"
        with pytest.raises(ServiceUnavailable):
            MidtransProvider(http(Replay(answer)), "SB-Mid-server-TEST").read_notification(
                {}, midtrans_notice()[1]
            )
    down = {"request": {"method": "GET", "path": f"/v2/{ORDER}/status"}, "raise": "Timeout"}
    with pytest.raises(ServiceUnavailable) as info:
        MidtransProvider(http(Replay(down), retries=0), "SB-Mid-server-TEST").read_notification(
            {}, midtrans_notice()[1]
        )
    assert info.value.code == "PROVIDER_UNAVAILABLE"


def test_a_notice_key_is_the_verified_fact_not_the_body():
    replay = Replay(midtrans_status(), midtrans_status())
    provider = MidtransProvider(http(replay), "SB-Mid-server-TEST")
    first = provider.read_notification({}, midtrans_notice()[1])
    padded = provider.read_notification({}, midtrans_notice(transaction_time="junk", x="y")[1])
    assert first.key("midtrans") == padded.key("midtrans") != first.key("xendit")


def test_xendit_invoice_status_and_refund_with_idempotency_header():
    replay = Replay(*fixture("xendit_invoice.json")["exchanges"])
    provider = XenditProvider(http(replay), "cb-token")
    charge = provider.charge(charge_request("qris"))
    assert charge.provider_ref == "579c8d61f23fa4ca35e52da4"
    assert charge.checkout_url.startswith("https://checkout.xendit.co/")
    assert provider.view(ORDER, charge.provider_ref) == ("paid", 50000)
    done = provider.refund(ORDER, charge.provider_ref, 20000, "refund-key-1")
    assert done.status == "succeeded" and done.provider_ref.startswith("rfd-")
    assert not replay.exchanges


def xendit_invoice(**fields) -> dict:
    body = {
        "id": "579c8d61f23fa4ca35e52da4",
        "external_id": ORDER,
        "status": "PAID",
        "amount": 50000,
        "paid_amount": 50000,
        **fields,
    }
    return {
        "request": {"method": "GET", "path": "/v2/invoices/579c8d61f23fa4ca35e52da4"},
        "response": {"status": 200, "body": body},
    }


def test_xendit_callback_token_checked_then_invoice_asked_from_the_api():
    raw = json.dumps(fixture("xendit_callback_paid.json")["body"]).encode()
    replay = Replay(xendit_invoice())
    note = XenditProvider(http(replay), "cb-token").read_notification(
        {"x-callback-token": "cb-token"}, raw
    )
    assert (note.order_id, note.kind, note.amount_idr) == (ORDER, "paid", 50000)
    assert not replay.exchanges
    for headers in ({}, {"x-callback-token": "cb-tokem"}, {"x-callback-token": ""}):
        with pytest.raises(Unauthorized):
            XenditProvider(http(Replay()), "cb-token").read_notification(headers, raw)
    with pytest.raises(Unauthorized):
        XenditProvider(http(Replay()), "").read_notification({"x-callback-token": ""}, raw)
    # the callback says PAID, Xendit's invoice says PENDING: pending, with the invoice's amount
    pending = Replay(xendit_invoice(status="PENDING", paid_amount=None))
    note = XenditProvider(http(pending), "cb-token").read_notification(
        {"x-callback-token": "cb-token"}, raw
    )
    assert (note.kind, note.amount_idr) == ("pending", 50000)
    other = Replay(xendit_invoice(external_id="99999999-2222-3333-4444-555555555555-1"))
    with pytest.raises(BadRequest) as info:
        XenditProvider(http(other), "cb-token").read_notification(
            {"x-callback-token": "cb-token"}, raw
        )
    assert info.value.code == "INCONSISTENT_NOTIFICATION"


def test_xendit_refused_refund_is_a_conflict():
    replay = Replay(
        {
            "request": {
                "method": "POST",
                "path": "/refunds",
                "body": {
                    "invoice_id": "inv",
                    "reference_id": "k",
                    "amount": 1,
                    "reason": "REQUESTED_BY_CUSTOMER",
                },
            },
            "response": {"status": 400, "body": {"error_code": "REFUND_NOT_SUPPORTED"}},
        }
    )
    with pytest.raises(Conflict):
        XenditProvider(http(replay), "t").refund(ORDER, "inv", 1, "k")
