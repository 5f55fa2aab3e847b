"""The queue service's entry points: validate, call one use case, commit, return."""

from __future__ import annotations

import logging
import os

from nameko.dependency_providers import Config
from nameko.exceptions import serialize
from nameko.timer import timer
from sqlalchemy.exc import IntegrityError

from mpp_chassis.batching import batch_event_handler
from mpp_chassis.collector import FrozenSurvivors
from mpp_chassis.db import Database
from mpp_chassis.environment import Secret, StartupCheck
from mpp_chassis.grouping import ALONE, GroupCommit
from mpp_chassis.messaging import answer_for, event_handler, rpc
from mpp_chassis.metrics import Metrics
from mpp_chassis.ops import OpsEndpoints
from mpp_contracts import rpc as contracts
from mpp_contracts.errors import EXPECTED_ERRORS, Conflict
from mpp_queue import usecases
from mpp_queue.adapters.tables import metadata

_log = logging.getLogger(__name__)

SWEEP_SECONDS = float(os.environ.get("QUEUE_SWEEP_SECONDS", "15"))
"""How often each replica looks for SLA breaches, booking no-shows, tickets of past days and
walk-in counts that drifted from the tickets (a place leaked by a killed process).
A module constant because nameko fixes a timer's interval at import; every sweep is a guarded
update, so replicas sweeping at once still emit each event once."""


class QueueService(OpsEndpoints):
    name = "queue"

    # deployed, the service refuses to start while one of these is missing or a local default
    startup_check = StartupCheck(
        secrets=(
            Secret("NIK_HASH_KEY", "local-dev-nik-key"),
            Secret("TICKET_CODE_KEY", "local-ticket-code-key"),
        ),
    )
    config = Config()
    # reads of a ticket or an invoice cost one round trip on PostgreSQL, not three (a view the
    # page refreshes: its statements need not share a snapshot; docs/decisions/0006)
    uow = Database(metadata, read_only=("get_ticket",))
    ticket_group = GroupCommit()
    transition_group = GroupCommit()
    call_group = GroupCommit()
    collector = FrozenSurvivors()
    metrics_ = Metrics()

    @property
    def settings(self) -> usecases.Settings:
        c = self.config
        return usecases.Settings(
            mall_timezone=c.get("MALL_TIMEZONE", "Asia/Jakarta"),
            nik_hash_key=str(c.get("NIK_HASH_KEY", "change-me")),
            ticket_code_key=str(c.get("TICKET_CODE_KEY", "change-me")),
            no_show_after_calls=int(c.get("NO_SHOW_AFTER_CALLS", 3)),
            max_priority_streak=int(c.get("MAX_PRIORITY_STREAK", 3)),
            booking_no_show_threshold=int(c.get("BOOKING_NO_SHOW_THRESHOLD", 3)),
            booking_no_show_window_days=int(c.get("BOOKING_NO_SHOW_WINDOW_DAYS", 30)),
            booking_block_days=int(c.get("BOOKING_BLOCK_DAYS", 30)),
        )

    def _commit(self, result):
        self.uow.commit()
        return result

    def _once_per_request(self, request_key: str | None, work, done_for):
        """Commit ``work()``. A keyed request that arrived twice at once (a gateway's retry
        racing its first attempt) loses to itself: a unique request key, or a rule the first
        arrival's rows now break (quota, slot capacity, one booking a day). The loser rolls back
        and answers with what the winner stored for the key, ``done_for(request_key)``."""
        try:
            return self._commit(work())
        except (IntegrityError, Conflict):
            self.uow.rollback()
            done = request_key and done_for(request_key)
            if not done:
                raise
            return done

    # -- catalogue

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def register_agency(self, data: dict) -> dict:
        data = contracts.load(contracts.AgencyCreateSchema, data)
        return self._commit(usecases.register_agency(self.uow, data))

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def get_agency(self, agency_id: str) -> dict:
        return usecases.get_agency(self.uow, agency_id)

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def list_agencies(self, cursor: str | None = None, limit: int | None = None) -> dict:
        return usecases.list_agencies(self.uow, cursor, limit)

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def plug_service(self, agency_id: str, data: dict) -> dict:
        data = contracts.load(contracts.ServiceCreateSchema, data)
        return self._commit(usecases.plug_service(self.uow, agency_id, data))

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def update_service(self, agency_id: str, service_id: str, data: dict) -> dict:
        data = contracts.load(contracts.ServiceUpdateSchema, data)
        return self._commit(usecases.update_service(self.uow, agency_id, service_id, data))

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def unplug_service(self, agency_id: str, service_id: str) -> dict:
        return self._commit(usecases.unplug_service(self.uow, agency_id, service_id))

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def list_services(
        self, agency_id: str | None = None, cursor: str | None = None, limit: int | None = None
    ) -> dict:
        return usecases.list_services(self.uow, agency_id, cursor, limit)

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def get_service(self, service_id: str) -> dict:
        return usecases.get_service(self.uow, service_id)

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def add_counter(self, agency_id: str, data: dict) -> dict:
        data = contracts.load(contracts.CounterCreateSchema, data)
        return self._commit(usecases.add_counter(self.uow, agency_id, data))

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def update_counter(self, agency_id: str, counter_id: str, data: dict) -> dict:
        data = contracts.load(contracts.CounterUpdateSchema, data)
        return self._commit(usecases.update_counter(self.uow, agency_id, counter_id, data))

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def set_counter_open(self, counter_id: str, is_open: bool, actor: dict | None = None) -> dict:
        """The counter's officer opens or closes it (the gateway's open/close routes)."""
        return self._commit(usecases.set_counter_open(self.uow, counter_id, bool(is_open), actor))

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def list_counters(
        self, agency_id: str, cursor: str | None = None, limit: int | None = None
    ) -> dict:
        return usecases.list_counters(self.uow, agency_id, cursor, limit)

    # -- tickets and calling

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def take_ticket(self, data: dict, request_key: str | None = None) -> dict:
        """The new ticket as its holder sees it: with the access code (also on a retry)."""
        data = contracts.load(contracts.TicketCreateSchema, data)
        request_key = contracts.request_key(request_key)
        settings = self.settings
        if self.ticket_group.enabled and usecases.groups_take_tickets(self.uow):
            # concurrent take-tickets of this process share one transaction and one commit
            # (docs/decisions/0011-group-commit-take-ticket.md); what the group cannot settle
            # for this caller, it does alone below
            request = usecases.TakeRequest(self.uow, data, request_key, usecases.now_utc())
            view = self.ticket_group.submit(
                request, lambda requests: usecases.take_tickets(self.uow, settings, requests)
            )
            if view is not ALONE:
                return usecases.citizen_view(settings, view)
        # the view's reads (position, wait) share the ticket's transaction: apart, they cost two
        # more round trips (BEGIN, ROLLBACK). On PostgreSQL the line's hot counter rows were
        # claimed and committed on their own, so this transaction holds only its new rows.
        view = self._once_per_request(
            request_key,
            lambda: usecases.take_ticket(self.uow, settings, data, request_key=request_key),
            lambda key: usecases.ticket_for_request(self.uow.session, settings, key),
        )
        return usecases.citizen_view(settings, view)

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def take_tickets(self, takes: list) -> list[dict]:
        """Several citizens' take-tickets in one call: a gateway process gathers the ones that
        reach it at once (docs/decisions/0014-take-tickets-batched-at-the-gateway.md). Each item
        is ``{"data", "request_key", "correlation_id"}`` (the body and key ``take_ticket``
        takes, and the id of the HTTP request it came from, which its event carries); each answer
        is ``{"ticket": <the citizen's view>}`` or ``{"error": <the error, serialized>}``, in
        order. On PostgreSQL the items share one transaction as a group commit does; one item's
        refusal (or failure) never fails the others, which are answered as if alone."""
        takes = contracts.load_take_batch(takes)
        settings = self.settings
        now = usecases.now_utc()
        answers: list = [None] * len(takes)
        requests, slots = [], []
        for i, item in enumerate(takes):
            try:
                data = contracts.load(contracts.TicketCreateSchema, item["data"])
                key = contracts.request_key(item["request_key"])
            except EXPECTED_ERRORS as exc:
                answers[i] = exc
                continue
            uow = self.uow.correlated(item["correlation_id"])
            requests.append(usecases.TakeRequest(uow, data, key, now))
            slots.append(i)
        # keyed requests go alone: a retry racing its first attempt in another batch must meet
        # it as a single request does, not fail a whole group's insert
        grouped = [r for r in requests if r.request_key is None]
        outcomes = {}
        if len(grouped) > 1 and usecases.groups_take_tickets(self.uow):
            try:
                done = usecases.take_tickets(self.uow, settings, grouped)
                outcomes = dict(zip(map(id, grouped), done, strict=True))
            except Exception:  # the group could not be stored: its places went back
                _log.warning("a batch of take-tickets goes one by one", exc_info=True)
                outcomes = {}
        for i, request in zip(slots, requests, strict=True):
            outcome = outcomes.get(id(request), ALONE)
            answers[i] = self._take_alone(settings, request) if outcome is ALONE else outcome
        return [
            {"error": serialize(a)}
            if isinstance(a, BaseException)
            else {"ticket": usecases.citizen_view(settings, a)}
            for a in answers
        ]

    def _take_alone(self, settings, request: usecases.TakeRequest):
        """One item of a batch in its own transaction, as ``take_ticket`` would: its ticket, or
        the error it met (rolled back), never raised into the others."""
        uow = self.uow.correlated(request.uow.correlation_id)  # pending events: this worker's
        key = request.request_key
        try:
            return self._once_per_request(
                key,
                lambda: usecases.take_ticket(uow, settings, request.data, request_key=key),
                lambda k: usecases.ticket_for_request(self.uow.session, settings, k),
            )
        except EXPECTED_ERRORS as exc:
            return exc
        except Exception as exc:  # this caller's 503 (database) or 500, the others' tickets
            self.uow.rollback()
            _log.exception("take-ticket in a batch failed")
            return answer_for(exc)

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def get_ticket(
        self, ticket_id: str, code: str | None = None, actor: dict | None = None
    ) -> dict:
        return usecases.get_ticket(self.uow, self.settings, ticket_id, code, actor)

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def withdraw_ticket(self, ticket_id: str, code: str | None = None) -> dict:
        """The citizen, holding the ticket's access code, gives up a waiting ticket."""
        return self._commit(usecases.withdraw_ticket(self.uow, self.settings, ticket_id, code))

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def call_next(
        self, counter_id: str, actor: dict | None = None, request_key: str | None = None
    ) -> dict:
        """With a ``request_key`` (the gateway's hash of the officer's Idempotency-Key) a
        retried press answers the ticket it called, however often it arrives."""
        request_key = contracts.request_key(request_key)
        settings = self.settings
        if self.call_group.enabled and usecases.groups_transitions(self.uow):
            # concurrent presses of this process share one transaction and one commit (decision
            # 0012); what the group cannot settle for this press, it does alone below
            request = usecases.CallRequest(
                self.uow, counter_id, actor, request_key, usecases.now_utc()
            )
            view = self.call_group.submit(
                request, lambda requests: usecases.call_nexts(self.uow, settings, requests)
            )
            if view is not ALONE:
                return usecases.staff_view(view)
        view = self._once_per_request(
            request_key,
            lambda: usecases.call_next(
                self.uow, settings, counter_id, actor, request_key=request_key
            ),
            lambda key: usecases.ticket_for_press(self.uow.session, settings, key),
        )
        return usecases.staff_view(view)

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def ticket_action(
        self,
        ticket_id: str,
        action: str,
        data: dict | None = None,
        actor: dict | None = None,
        request_key: str | None = None,
    ) -> dict:
        data = contracts.load(contracts.TicketActionSchema, data)
        request_key = contracts.request_key(request_key)
        settings = self.settings
        if (
            action in usecases.GROUPED_ACTIONS
            and self.transition_group.enabled
            and usecases.groups_transitions(self.uow)
        ):
            # concurrent starts, completions, no-shows and cancellations of this process share
            # one transaction and one commit (docs/decisions/0012-group-commit-transitions.md);
            # what the group cannot settle for this caller, it does alone below
            request = usecases.TransitionRequest(
                self.uow, ticket_id, action, data, actor, request_key, usecases.now_utc()
            )
            view = self.transition_group.submit(
                request,
                lambda requests: usecases.ticket_transitions(self.uow, settings, requests),
            )
            if view is not ALONE:
                return usecases.staff_view(view)
        view = self._once_per_request(
            request_key,
            lambda: usecases.ticket_action(
                self.uow, settings, ticket_id, action, data, actor, request_key=request_key
            ),
            lambda key: usecases.ticket_for_press(self.uow.session, settings, key),
        )
        return usecases.staff_view(view)

    # -- bookings

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def list_slots(self, service_id: str, day: str | None = None) -> dict:
        contracts.load(contracts.SlotsQuerySchema, {"date": day})  # a day within the bounds
        return usecases.list_slots(self.uow, self.settings, service_id, day)

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def create_booking(self, data: dict, request_key: str | None = None) -> dict:
        data = contracts.load(contracts.BookingCreateSchema, data)
        request_key = contracts.request_key(request_key)
        return self._once_per_request(
            request_key,
            lambda: usecases.create_booking(self.uow, self.settings, data, request_key=request_key),
            lambda key: usecases.booking_for_request(self.uow.session, key),
        )

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def get_booking(self, booking_id: str) -> dict:
        return usecases.get_booking(self.uow, booking_id)

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def cancel_booking(self, booking_id: str) -> dict:
        return self._commit(usecases.cancel_booking(self.uow, booking_id))

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def check_in_booking(self, booking_id: str, request_key: str | None = None) -> dict:
        """With a ``request_key`` (the gateway's hash of the kiosk's Idempotency-Key) a retry
        after a lost answer gets the ticket the first attempt issued, not 409."""
        request_key = contracts.request_key(request_key)
        settings = self.settings
        result = self._once_per_request(
            request_key,
            lambda: usecases.check_in(self.uow, settings, booking_id, request_key=request_key),
            lambda key: usecases.check_in_for_request(self.uow.session, settings, booking_id, key),
        )
        return {**result, "ticket": usecases.citizen_view(self.settings, result["ticket"])}

    # -- the floor

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def counter_line(
        self, counter_id: str, actor: dict | None = None, query: dict | None = None
    ) -> dict:
        """An officer's console: the counter, what it holds and its line in call order.
        ``query`` (``limit``) is checked once the caller is known to be the counter's staff."""
        return usecases.counter_line(self.uow, self.settings, counter_id, actor, query or {})

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def display_snapshot(self, agency_id: str | None = None, recent: int = 10) -> dict:
        return usecases.display_snapshot(self.uow, self.settings, agency_id, recent)

    @rpc(expected_exceptions=EXPECTED_ERRORS)
    def queue_stats(self, agency_id: str | None = None, day: str | None = None) -> dict:
        contracts.load(contracts.StatsQuerySchema, {"agency": agency_id, "date": day})
        return usecases.queue_stats(self.uow, self.settings, agency_id, day)

    @timer(interval=SWEEP_SECONDS)
    def sweep(self) -> None:
        """SLA breaches, booking no-shows and tickets left open from earlier days."""
        settings = self.settings
        for name, step in (
            ("sla", usecases.sweep_sla),
            ("booking_no_shows", usecases.sweep_no_shows),
            ("past_days", usecases.close_past_days),
            ("quotas", usecases.reconcile_quotas),
        ):
            try:
                count = step(self.uow, settings)
                self.uow.commit()
            except Exception:
                self.uow.rollback()
                _log.exception("sweep step failed", extra={"step": name})
                continue
            if count:
                _log.info("sweep", extra={"step": name, "count": count})

    # -- facts from other services

    @batch_event_handler("payment", "payment_requested")
    def handle_payment_requested(self, events: list[dict]) -> None:
        self.uow.apply_claimed(events, "handle_payment_requested", usecases.PAYMENT_REQUESTED)
        self.uow.commit()

    @batch_event_handler("payment", "payment_succeeded")
    def handle_payment_succeeded(self, events: list[dict]) -> None:
        self.uow.apply_claimed(events, "handle_payment_succeeded", usecases.PAYMENT_CHANGED)
        self.uow.commit()

    @event_handler("payment", "payment_terms_set")
    def handle_payment_terms_set(self, event: dict) -> None:
        """The payment service's verdict per service version, kept to route completions of a
        free service as ``ticket_completed.free`` (usecases.payment_terms)."""
        if self.uow.claim_event(event["id"], "handle_payment_terms_set"):
            usecases.set_payment_terms(self.uow, event["payload"])
            self.uow.commit()

    @batch_event_handler("rating", "rating_invited")
    def handle_rating_invited(self, events: list[dict]) -> None:
        self.uow.apply_claimed(events, "handle_rating_invited", usecases.RATING_INVITED)
        self.uow.commit()
