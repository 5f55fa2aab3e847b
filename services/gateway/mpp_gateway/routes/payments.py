"""Gateway routes: invoices, provider webhooks and the simulator."""

from __future__ import annotations

from mpp_gateway.http import route
from mpp_gateway.responses import ok


class PaymentsRoutes:
    @route("GET", "/v1/payments/{payment}")
    def get_payment(self, request, principal, payment):
        return ok(self.payment_rpc.get_payment(payment))

    @route("GET", "/v1/tickets/{ticket}/payment")
    def get_ticket_payment(self, request, principal, ticket):
        return ok(self.payment_rpc.get_ticket_payment(ticket))

    @route("POST", "/v1/webhooks/payments/{provider}")
    def payment_webhook(self, request, principal, provider):
        headers = {k.lower(): v for k, v in request.headers.items()}
        body = request.get_data(as_text=True)
        return ok(self.payment_rpc.handle_notification(provider, headers, body))

    @route("POST", "/v1/simulator/payments/{payment}/pay")
    def simulator_pay(self, request, principal, payment):
        return ok(self.payment_rpc.simulate_payment(payment), 202)
