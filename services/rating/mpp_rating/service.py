"""The rating service's entry points."""

from __future__ import annotations

from nameko.dependency_providers import Config
from nameko.rpc import rpc

from mpp_chassis.db import Database
from mpp_chassis.messaging import event_handler
from mpp_chassis.metrics import Metrics
from mpp_chassis.ops import OpsEndpoints
from mpp_contracts import rpc as contracts
from mpp_contracts.errors import EXPECTED_ERRORS
from mpp_rating import usecases
from mpp_rating.adapters.tables import metadata


class RatingService(OpsEndpoints):
    name = "rating"

    config = Config()
    uow = Database(metadata)
    metrics_ = Metrics()

    @property
    def settings(self) -> usecases.Settings:
        return usecases.Settings(
            mall_timezone=self.config.get("MALL_TIMEZONE", "Asia/Jakarta"),
            token_days=int(self.config.get("RATING_TOKEN_DAYS", 7)),
        )

    @event_handler("queue", "ticket_completed")
    def handle_ticket_completed(self, event: dict) -> None:
        if self.uow.claim_event(event["id"], "handle_ticket_completed"):
            usecases.on_ticket_completed(self.uow, self.settings, event["payload"])
            self.uow.commit()

    @event_handler("payment", "payment_succeeded")
    def handle_payment_succeeded(self, event: dict) -> None:
        if self.uow.claim_event(event["id"], "handle_payment_succeeded"):
            usecases.on_payment_succeeded(self.uow, self.settings, event["payload"])
            self.uow.commit()

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def submit_rating(self, data: dict) -> dict:
        data = contracts.load(contracts.RatingCreateSchema(), data)
        result = usecases.submit_rating(self.uow, self.settings, data)
        self.uow.commit()
        return result

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def summary(self, filters: dict) -> dict:
        return usecases.summary(self.uow, self.settings, filters)
