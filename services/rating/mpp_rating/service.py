"""The rating service's entry points."""

from __future__ import annotations

from nameko.dependency_providers import Config
from nameko.timer import timer

from mpp_chassis.batching import batch_event_handler
from mpp_chassis.claims import riding_claim
from mpp_chassis.collector import FrozenSurvivors
from mpp_chassis.db import Database
from mpp_chassis.environment import StartupCheck
from mpp_chassis.messaging import event_handler, rpc
from mpp_chassis.metrics import Metrics
from mpp_chassis.ops import OpsEndpoints
from mpp_contracts import rpc as contracts
from mpp_contracts.errors import EXPECTED_ERRORS
from mpp_rating import usecases
from mpp_rating.adapters.tables import metadata

#: How often the complaint timer looks for missed deadlines (deadlines are days; a minute is ample).
ESCALATION_INTERVAL_SECONDS = 60


class RatingService(OpsEndpoints):
    name = "rating"

    # deployed, refuses to start on the local broker or database URL (no secret of its own)
    startup_check = StartupCheck()
    config = Config()
    uow = Database(metadata)
    collector = FrozenSurvivors()
    metrics_ = Metrics()

    @property
    def settings(self) -> usecases.Settings:
        return usecases.Settings(
            mall_timezone=self.config.get("MALL_TIMEZONE", "Asia/Jakarta"),
            token_days=int(self.config.get("RATING_TOKEN_DAYS", 7)),
            ikm_weight=self.config.get("IKM_WEIGHT", "exact"),
        )

    @event_handler("queue", "agency_registered")
    def handle_agency_registered(self, event: dict) -> None:
        if self.uow.claim_event(event["id"], "handle_agency_registered"):
            usecases.on_agency_registered(self.uow, event["payload"])
            self.uow.commit()

    # the hot handlers of every journey apply the deliveries at hand in one transaction
    # (mpp_chassis.batching): each receives a list of envelopes and commits once
    # the completions the queue routed past the payment service (``ticket_completed.free``: its
    # terms said nothing is owed) only. Every other completion reaches this service through the
    # payment service's verdict, which carries who served and when (decision 0015); the keys
    # this queue was bound to before are removed at start
    @batch_event_handler(
        "queue",
        "ticket_completed",
        routing_key="ticket_completed.free",
        unbind=("ticket_completed", "ticket_completed.#"),
    )
    def handle_ticket_completed(self, events: list[dict]) -> None:
        settings = self.settings
        handler = "handle_ticket_completed"
        for event in self.uow.claimed(events, handler, riding=True):
            claim = riding_claim(self.uow.session, event, handler)  # in the invitation's upsert
            usecases.on_ticket_completed(self.uow, settings, event["payload"], claim)
        self.uow.commit()

    @batch_event_handler("payment", "payment_succeeded")
    def handle_payment_succeeded(self, events: list[dict]) -> None:
        self._on_payment_settled(events, "handle_payment_succeeded")

    @batch_event_handler("payment", "payment_not_required")
    def handle_payment_not_required(self, events: list[dict]) -> None:
        self._on_payment_settled(events, "handle_payment_not_required")

    def _on_payment_settled(self, events: list[dict], handler: str) -> None:
        settings = self.settings
        for event in self.uow.claimed(events, handler, riding=True):
            claim = riding_claim(self.uow.session, event, handler)  # in the invitation's upsert
            usecases.on_payment_settled(self.uow, settings, event["payload"], claim)
        self.uow.commit()

    @timer(interval=ESCALATION_INTERVAL_SECONDS)
    def escalate_overdue_complaints(self) -> None:
        usecases.escalate_overdue(self.uow)
        self.uow.commit()

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def submit_rating(self, data: dict, request_key: str | None = None) -> dict:
        data = contracts.load(contracts.RatingCreateSchema, data)
        request_key = contracts.request_key(request_key)
        # stores the rating, its event and its fold into the read model at once (decision 0030)
        result = usecases.submit_rating(self.uow, self.settings, data, request_key=request_key)
        self.uow.commit()
        return result

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def summary(self, filters: dict) -> dict:
        filters = contracts.load(contracts.RatingSummaryQuerySchema, filters)
        filters["from"] = filters.pop("from_")
        return usecases.summary(self.uow, self.settings, filters)

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def leaderboard(self, query: dict) -> dict:
        query = contracts.load(contracts.LeaderboardQuerySchema, query)
        return usecases.leaderboard(self.uow, self.settings, query["period"])

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def publish_comment(self, rating_id: str, actor: dict | None) -> dict:
        result = usecases.publish_comment(self.uow, rating_id, actor)
        self.uow.commit()
        return result

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def list_complaints(self, agency_id: str, query: dict, actor: dict | None) -> dict:
        query = contracts.load(contracts.ComplaintListQuerySchema, query)
        return usecases.list_complaints(self.uow, agency_id, query, actor)

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def respond_to_complaint(self, complaint_id: str, data: dict, actor: dict | None) -> dict:
        data = contracts.load(contracts.ComplaintResponseCreateSchema, data)
        result = usecases.respond_to_complaint(self.uow, complaint_id, data, actor)
        self.uow.commit()
        return result
