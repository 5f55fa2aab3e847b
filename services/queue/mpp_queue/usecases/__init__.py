"""Queue use cases: each takes the unit of work and plain values, applies the domain rules and
stores the state change together with the events it implies. No nameko here.

Every use case that depends on the time takes an optional ``now`` (UTC, aware), so tests can run
a whole day, its check-in windows and SLA deadlines without waiting for the clock.
"""

from .bookings import (
    booking_for_request,
    cancel_booking,
    check_in,
    check_in_for_request,
    create_booking,
    get_booking,
    list_slots,
    sweep_no_shows,
)
from .call_groups import CallRequest, call_nexts
from .catalogue import (
    add_counter,
    get_agency,
    get_service,
    list_agencies,
    list_counters,
    list_services,
    plug_service,
    register_agency,
    set_counter_open,
    unplug_service,
    update_counter,
    update_service,
)
from .common import Settings, now_utc
from .console import counter_line
from .counter_actions import (
    PAYMENT_CHANGED,
    PAYMENT_REQUESTED,
    RATING_INVITED,
    ticket_action,
    withdraw_ticket,
)
from .counter_calls import call_next, call_ticket, ticket_for_press
from .floor import close_past_days, display_snapshot, queue_stats, sweep_sla
from .issuing import issue_ticket, take_ticket, ticket_for_request
from .payment_terms import set_payment_terms
from .places import reconcile_quotas
from .take_groups import TakeRequest, groups_take_tickets, take_tickets
from .tickets import citizen_view, get_ticket, staff_view, ticket_view
from .transition_groups import (
    GROUPED_ACTIONS,
    TransitionRequest,
    groups_transitions,
    ticket_transitions,
)

__all__ = [
    "set_payment_terms",
    "counter_line",
    "withdraw_ticket",
    "Settings",
    "add_counter",
    "booking_for_request",
    "call_next",
    "call_nexts",
    "CallRequest",
    "call_ticket",
    "cancel_booking",
    "citizen_view",
    "check_in",
    "check_in_for_request",
    "close_past_days",
    "create_booking",
    "display_snapshot",
    "get_agency",
    "get_booking",
    "get_service",
    "get_ticket",
    "issue_ticket",
    "list_agencies",
    "list_counters",
    "list_services",
    "list_slots",
    "now_utc",
    "plug_service",
    "queue_stats",
    "reconcile_quotas",
    "register_agency",
    "set_counter_open",
    "staff_view",
    "sweep_no_shows",
    "sweep_sla",
    "take_ticket",
    "take_tickets",
    "TakeRequest",
    "groups_take_tickets",
    "ticket_for_press",
    "ticket_for_request",
    "ticket_action",
    "ticket_transitions",
    "TransitionRequest",
    "GROUPED_ACTIONS",
    "PAYMENT_CHANGED",
    "PAYMENT_REQUESTED",
    "RATING_INVITED",
    "groups_transitions",
    "ticket_view",
    "unplug_service",
    "update_counter",
    "update_service",
]
