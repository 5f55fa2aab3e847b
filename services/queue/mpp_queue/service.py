"""The queue service's entry points: validate, call one use case, commit, return."""

from __future__ import annotations

from nameko.dependency_providers import Config
from nameko.rpc import rpc

from mpp_chassis.db import Database
from mpp_chassis.messaging import event_handler
from mpp_chassis.metrics import Metrics
from mpp_chassis.ops import OpsEndpoints
from mpp_contracts import rpc as contracts
from mpp_contracts.errors import EXPECTED_ERRORS
from mpp_queue import usecases
from mpp_queue.adapters.tables import metadata


class QueueService(OpsEndpoints):
    name = "queue"

    config = Config()
    uow = Database(metadata)
    metrics_ = Metrics()

    @property
    def settings(self) -> usecases.Settings:
        c = self.config
        return usecases.Settings(
            mall_timezone=c.get("MALL_TIMEZONE", "Asia/Jakarta"),
            nik_hash_key=str(c.get("NIK_HASH_KEY", "change-me")),
            no_show_after_calls=int(c.get("NO_SHOW_AFTER_CALLS", 3)),
            max_priority_streak=int(c.get("MAX_PRIORITY_STREAK", 3)),
        )

    def _commit(self, result):
        self.uow.commit()
        return result

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def register_agency(self, data: dict) -> dict:
        data = contracts.load(contracts.AgencyCreateSchema(), data)
        return self._commit(usecases.register_agency(self.uow, data))

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def list_agencies(self) -> list[dict]:
        return usecases.list_agencies(self.uow)

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def plug_service(self, agency_id: str, data: dict) -> dict:
        data = contracts.load(contracts.ServiceCreateSchema(), data)
        return self._commit(usecases.plug_service(self.uow, agency_id, data))

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def list_services(self, agency_id: str | None = None) -> list[dict]:
        return usecases.list_services(self.uow, agency_id)

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def add_counter(self, agency_id: str, data: dict) -> dict:
        data = contracts.load(contracts.CounterCreateSchema(), data)
        return self._commit(usecases.add_counter(self.uow, agency_id, data))

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def take_ticket(self, data: dict) -> dict:
        data = contracts.load(contracts.TicketCreateSchema(), data)
        return self._commit(usecases.take_ticket(self.uow, self.settings, data))

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def get_ticket(self, ticket_id: str) -> dict:
        return usecases.get_ticket(self.uow, self.settings, ticket_id)

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def call_next(self, counter_id: str, actor: dict | None = None) -> dict:
        return self._commit(usecases.call_next(self.uow, self.settings, counter_id, actor))

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def ticket_action(
        self, ticket_id: str, action: str, data: dict | None = None, actor: dict | None = None
    ) -> dict:
        data = contracts.load(contracts.TicketActionSchema(), data)
        return self._commit(
            usecases.ticket_action(self.uow, self.settings, ticket_id, action, data, actor)
        )

    @event_handler("payment", "payment_requested")
    def handle_payment_requested(self, event: dict) -> None:
        self._on_payment(event, "handle_payment_requested", initial=True)

    @event_handler("payment", "payment_succeeded")
    def handle_payment_succeeded(self, event: dict) -> None:
        self._on_payment(event, "handle_payment_succeeded", initial=False)

    def _on_payment(self, event: dict, handler: str, *, initial: bool) -> None:
        if self.uow.claim_event(event["id"], handler):
            usecases.record_payment(self.uow, event["payload"], initial=initial)
            self.uow.commit()

    @event_handler("rating", "rating_invited")
    def handle_rating_invited(self, event: dict) -> None:
        if self.uow.claim_event(event["id"], "handle_rating_invited"):
            usecases.record_rating_invitation(self.uow, event["payload"])
            self.uow.commit()
