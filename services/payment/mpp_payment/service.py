"""The payment service's entry points."""

from __future__ import annotations

import logging
import os

import eventlet
import requests
from nameko.dependency_providers import Config
from nameko.timer import Timer
from prometheus_client import Gauge

from mpp_chassis.batching import batch_event_handler
from mpp_chassis.claims import riding_claim
from mpp_chassis.collector import FrozenSurvivors
from mpp_chassis.db import Database
from mpp_chassis.environment import NO_SIMULATOR, Secret, StartupCheck, when
from mpp_chassis.messaging import event_handler, rpc
from mpp_chassis.metrics import Metrics
from mpp_chassis.ops import OpsEndpoints
from mpp_contracts import rpc as contracts
from mpp_contracts.errors import EXPECTED_ERRORS
from mpp_payment import charging, notices, reading, refunds, reports, usecases, verdicts
from mpp_payment.adapters.tables import metadata

_log = logging.getLogger(__name__)

CHARGES_WAITING = Gauge(
    "mpp_payment_charges_waiting",
    "Charge attempts stored whose provider charge is not made yet (a provider outage shows here)",
)


class ConfiguredTimer(Timer):
    """A nameko timer whose interval is read from config (``setting``) at setup."""

    def __init__(self, interval: float, setting: str = "EXPIRY_SWEEP_SECONDS", **kwargs) -> None:
        super().__init__(interval, **kwargs)
        self.setting = setting

    def setup(self) -> None:
        self.interval = float(self.container.config.get(self.setting, self.interval))
        super().setup()


timer = ConfiguredTimer.decorator


def _provider(name: str):
    return when("PAYMENT_PROVIDER", name, default="simulator")


class PaymentService(OpsEndpoints):
    name = "payment"

    # deployed, the service refuses to start while one of these is missing or a local default
    startup_check = StartupCheck(
        secrets=(
            Secret("SIMULATOR_SECRET", "local-simulator-secret", needed=_provider("simulator")),
            Secret("MIDTRANS_SERVER_KEY", needed=_provider("midtrans"), environment_only=True),
            Secret("XENDIT_SECRET_KEY", needed=_provider("xendit"), environment_only=True),
            Secret("XENDIT_CALLBACK_TOKEN", needed=_provider("xendit"), environment_only=True),
        ),
        rules=(NO_SIMULATOR,),
    )
    config = Config()
    # one SELECT each: on PostgreSQL one round trip, not three (docs/decisions/0006); the
    # simulator's button reads, then writes its book with one statement: no transaction either
    uow = Database(
        metadata,
        read_only=("get_payment", "get_ticket_payment", "read_ticket_payment", "get_qris_image"),
        alone=("simulate_payment",),
    )
    collector = FrozenSurvivors()
    metrics_ = Metrics()

    @property
    def settings(self) -> usecases.Settings:
        c = self.config
        return usecases.Settings(
            mall_code=str(c.get("MALL_CODE", "MPP")),
            mall_timezone=c.get("MALL_TIMEZONE", "Asia/Jakarta"),
            merchant_name=c.get("QRIS_MERCHANT_NAME", "MAL PELAYANAN PUBLIK"),
            merchant_city=c.get("QRIS_MERCHANT_CITY", "JAKARTA"),
            nmid=str(c.get("QRIS_NMID", "ID1020000000001")),
            merchant_pan=str(c.get("QRIS_MERCHANT_PAN", "9360000000000000001")),
            qris_expiry_minutes=int(c.get("QRIS_EXPIRY_MINUTES", 30)),
            va_expiry_minutes=int(c.get("VA_EXPIRY_MINUTES", 24 * 60)),
            ewallet_expiry_minutes=int(c.get("EWALLET_EXPIRY_MINUTES", 15)),
            simulator_secret=str(c.get("SIMULATOR_SECRET", "simulator-secret")),
            provider=str(c.get("PAYMENT_PROVIDER", "simulator")),
            default_method=str(c.get("PAYMENT_DEFAULT_METHOD", "qris")),
            va_prefix=str(c.get("VA_BANK_PREFIX", "8808")),
            midtrans_base_url=str(c.get("MIDTRANS_BASE_URL", "https://api.sandbox.midtrans.com")),
            xendit_base_url=str(c.get("XENDIT_BASE_URL", "https://api.xendit.co")),
            http_timeout_seconds=float(c.get("PROVIDER_HTTP_TIMEOUT", 10)),
            http_retries=int(c.get("PROVIDER_HTTP_RETRIES", 2)),
            # provider secrets: from the environment only, never from a config file
            midtrans_server_key=os.environ.get("MIDTRANS_SERVER_KEY", ""),
            xendit_secret_key=os.environ.get("XENDIT_SECRET_KEY", ""),
            xendit_callback_token=os.environ.get("XENDIT_CALLBACK_TOKEN", ""),
        )

    @event_handler("queue", "service_plugged")
    def handle_service_plugged(self, event: dict) -> None:
        self._catalogue(event, "handle_service_plugged")

    @event_handler("queue", "service_updated")
    def handle_service_updated(self, event: dict) -> None:
        self._catalogue(event, "handle_service_updated")

    def _catalogue(self, event: dict, handler: str) -> None:
        if self.uow.claim_event(event["id"], handler):
            usecases.apply_catalogue_event(self.uow, event["payload"])
            self.uow.commit()

    # bound to the routing key ``ticket_completed`` only: a completion the queue routed as
    # ``ticket_completed.free`` (our terms for the version in force said "not required") never
    # comes here (docs/decisions/0013-free-completions-routing.md)
    @batch_event_handler("queue", "ticket_completed")
    def handle_ticket_completed(self, events: list[dict]) -> None:
        """This service owns "does this ticket need paying?": it opens the invoice or says that
        none is required; the rating service invites from these facts only. The completions at
        hand are applied in one transaction (mpp_chassis.batching); the charges follow it."""
        settings, handler = self.settings, "handle_ticket_completed"
        attempts = []
        for event in self.uow.claimed(events, handler, riding=True):
            claim = riding_claim(self.uow.session, event, handler)  # in the fee's read
            amount = verdicts.invoice_amount(self.uow, event["payload"], claim)
            if amount is None:
                continue  # handled before
            if not usecases.needs_paying(amount):
                verdicts.payment_not_required(self.uow, event["payload"])
            else:
                attempts.append(charging.open_invoice(self.uow, settings, event["payload"], amount))
        self.uow.commit()  # the invoices exist now, "preparing payment"
        for attempt in attempts:  # never raises: the sweep retries a charge that failed
            charging.charge_now(self.uow, settings, attempt)

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def get_payment(self, payment_id: str) -> dict:
        return usecases.get_payment(self.uow, payment_id)

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def get_ticket_payment(self, ticket_id: str) -> dict:
        return usecases.get_ticket_payment(self.uow, ticket_id)

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def read_ticket_payment(
        self, ticket_id: str, code: str | None = None, actor: dict | None = None
    ) -> dict:
        """The invoice for its ticket's code holder or its agency's staff, without asking the
        queue; ``verified`` False when only the queue can tell (reading.read_ticket_payment)."""
        return reading.read_ticket_payment(self.uow, ticket_id, code, actor)

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def get_qris_image(self, payment_id: str, fmt: str = "png") -> dict:
        return usecases.qris_image(self.uow, payment_id, "svg" if fmt == "svg" else "png")

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def choose_method(self, payment_id: str, data: dict) -> dict:
        data = contracts.load(contracts.PaymentMethodSchema, data)
        view, attempt = charging.choose_method(self.uow, self.settings, payment_id, data["method"])
        self.uow.commit()
        if attempt is None:
            return view
        charging.charge_now(self.uow, self.settings, attempt)
        return usecases.get_payment(self.uow, payment_id)

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def handle_notification(self, provider: str, headers: dict, body: str) -> dict:
        result = notices.handle_notification(self.uow, self.settings, provider, headers, body)
        self.uow.commit()
        return result

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def refund(
        self, actor: dict | None, payment_id: str, data: dict, idempotency_key: str | None
    ) -> dict:
        data = contracts.load(contracts.RefundCreateSchema, data)
        result = refunds.refund(self.uow, self.settings, actor, payment_id, data, idempotency_key)
        self.uow.commit()
        return result

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def settlement_report(
        self, actor: dict | None, agency_id: str, day: str | None, fmt: str = "json"
    ) -> dict:
        contracts.load(contracts.SettlementQuerySchema, {"date": day} if day else {})
        return reports.settlement_report(self.uow, self.settings, actor, agency_id, day, fmt)

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def reconciliation(self, actor: dict | None, agency_id: str, day: str | None) -> dict:
        contracts.load(contracts.SettlementQuerySchema, {"date": day} if day else {})
        return reports.reconciliation(self.uow, self.settings, actor, agency_id, day)

    @timer(interval=30)
    def expire_overdue(self) -> None:
        """Pending invoices past their deadline become expired (``payment_expired``)."""
        if usecases.expire_due(self.uow, self.settings):
            self.uow.commit()

    @timer(interval=2, setting="CHARGE_SWEEP_SECONDS")
    def create_charges(self) -> None:
        """Charge attempts still waiting (a provider outage, a killed worker) are tried again,
        each outside any database transaction, with its own idempotency key."""
        CHARGES_WAITING.set(charging.waiting(self.uow))
        for attempt in charging.due_charges(self.uow):
            charging.run_charge(self.uow, self.settings, attempt)

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def simulate_payment(self, actor: dict | None, payment_id: str) -> dict:
        """The simulated provider "receives" the citizen's money and, like a real provider, tells
        the mall through a signed webhook to the gateway, sent after this call returns. Refused
        unless the simulator is the configured provider and ``actor`` administers the invoice's
        agency (or the mall)."""
        body, signature = notices.simulator_notification(self.uow, self.settings, actor, payment_id)
        self.uow.commit()  # the simulated provider's own book now says "paid"
        url = self.config.get(
            "SIMULATOR_WEBHOOK_URL", "http://127.0.0.1:8000/v1/webhooks/payments/simulator"
        )
        eventlet.spawn_after(0, _deliver, url, body, signature)
        return {"payment_id": payment_id, "notification": "sent", "webhook": url}


# the simulated provider's webhooks, like a real provider's, reuse their connections to the
# mall's gateway: a new TCP connection per notice cost both processes its setup (issue 20)
_WEBHOOKS = requests.Session()


def _deliver(url: str, body: bytes, signature: str) -> None:
    for attempt in range(5):
        try:
            response = _WEBHOOKS.post(
                url,
                data=body,
                timeout=5,
                headers={"Content-Type": "application/json", "X-Simulator-Signature": signature},
            )
            if response.status_code < 500:
                return
        except requests.RequestException as exc:
            _log.warning("simulator webhook failed: %s", type(exc).__name__)
        eventlet.sleep(2**attempt)
