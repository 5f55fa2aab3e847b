"""Gateway routes: invoices, QR images, refunds, provider webhooks, settlements, the simulator."""

from __future__ import annotations

import base64

from nameko.exceptions import MethodNotFound
from werkzeug.wrappers import Response

from mpp_contracts import errors
from mpp_contracts import rpc as contracts
from mpp_gateway import inputs
from mpp_gateway.http import route
from mpp_gateway.responses import AGENCY_ADMIN, actor, ok
from mpp_gateway.schemas import payment as schemas
from mpp_gateway.schemas.queue import TicketReadQuerySchema

WEBHOOK_PROVIDERS = ("simulator", "midtrans", "xendit")


class PaymentsRoutes:
    @route(
        "GET",
        "/v1/payments/{payment}",
        response=schemas.PaymentSchema,
        summary="Invoice, method details (QRIS payload, VA number), status, receipt",
    )
    def get_payment(self, request, principal, payment):
        return ok(self.payment_rpc.get_payment(payment))

    @route(
        "GET",
        "/v1/tickets/{ticket}/payment",
        query=TicketReadQuerySchema,
        response=schemas.PaymentSchema,
        summary="The invoice of a ticket: for the holder of its access code (?code=) or its "
        "agency's staff, as the ticket itself",
    )
    def get_ticket_payment(self, request, principal, ticket):
        # one RPC: the payment service checks the code against the digest the queue sent with
        # the completion, or the key's agency (docs/decisions/0022-invoice-read-in-one-rpc.md)
        code, reader = self.ticket_reader(request)
        try:
            answer = self.payment_rpc.read_ticket_payment(ticket, code, reader)
        except MethodNotFound:  # a payment service of the release before, during an upgrade
            self.queue_rpc.get_ticket(ticket, code, reader)
            return ok(self.payment_rpc.get_ticket_payment(ticket))
        if not answer["verified"]:
            # no invoice, or one from before digests: the queue decides, as for the ticket
            self.queue_rpc.get_ticket(ticket, code, reader)  # 404 unless they may read it
            if answer["payment"] is None:
                raise errors.NotFound("PAYMENT_NOT_FOUND", "this ticket has no invoice (yet)")
        return ok(answer["payment"])

    @route(
        "GET",
        "/v1/payments/{payment}/qris.png",
        summary="QRIS image (PNG)",
        media_type="image/png",
    )
    def get_qris_png(self, request, principal, payment):
        image = self.payment_rpc.get_qris_image(payment, "png")
        return Response(base64.b64decode(image["png_base64"]), mimetype="image/png")

    @route(
        "GET",
        "/v1/payments/{payment}/qris.svg",
        summary="QRIS image (SVG)",
        media_type="image/svg+xml",
    )
    def get_qris_svg(self, request, principal, payment):
        image = self.payment_rpc.get_qris_image(payment, "svg")
        return Response(image["svg"], mimetype="image/svg+xml")

    @route(
        "POST",
        "/v1/payments/{payment}/method",
        body=contracts.PaymentMethodSchema,
        response=schemas.PaymentSchema,
        summary="Pay a pending invoice by another method (QRIS, virtual account, e-wallet)",
        idempotent=True,
    )
    def choose_payment_method(self, request, principal, payment, body):
        return ok(self.payment_rpc.choose_method(payment, body))

    @route(
        "POST",
        "/v1/payments/{payment}/refunds",
        roles=AGENCY_ADMIN,
        body=contracts.RefundCreateSchema,
        response=schemas.RefundSchema,
        status=201,
        summary="Full or partial refund, bounded by what was paid (Idempotency-Key required)",
        idempotent=True,
    )
    def refund_payment(self, request, principal, payment, body):
        key = request.headers.get("Idempotency-Key")
        return ok(self.payment_rpc.refund(actor(principal), payment, body, key), 201)

    @route(
        "POST",
        "/v1/webhooks/payments/{provider}",
        response=schemas.NotificationResultSchema,
        summary="Provider notifications, authenticated by the provider's signature or token",
    )
    def payment_webhook(self, request, principal, provider):
        if provider not in WEBHOOK_PROVIDERS:
            raise errors.NotFound("PROVIDER_NOT_FOUND", f"unknown payment provider {provider}")
        headers = {k.lower(): v for k, v in request.headers.items()}
        raw = request.get_data(cache=True)
        if inputs.json_depth(raw) > inputs.MAX_JSON_DEPTH:  # before the RPC, and its signature
            raise errors.BadRequest("JSON_TOO_DEEP", "notification nests too deep")
        body = request.get_data(as_text=True)
        return ok(self.payment_rpc.handle_notification(provider, headers, body))

    @route(
        "POST",
        "/v1/simulator/payments/{payment}/pay",
        roles=AGENCY_ADMIN,
        response=schemas.SimulatorPaySchema,
        status=202,
        summary="Test double: the simulated provider takes the money and calls the webhook "
        "(only where PAYMENT_PROVIDER is simulator; the invoice's agency_admin or mall_admin)",
        requires=("PAYMENT_PROVIDER", "simulator"),
    )
    def simulator_pay(self, request, principal, payment):
        # the payment service checks the key's agency against the invoice's, and refuses too
        # unless its own provider is the simulator
        return ok(self.payment_rpc.simulate_payment(actor(principal), payment), 202)

    @route(
        "GET",
        "/v1/agencies/{agency}/settlements",
        roles=AGENCY_ADMIN,
        agency_param="agency",
        query=contracts.SettlementQuerySchema,
        response=schemas.SettlementSchema,
        summary="The day's settlement report (JSON; CSV with Accept: text/csv)",
    )
    def get_settlement(self, request, principal, agency):
        query = contracts.shared(contracts.SettlementQuerySchema).load(request.args.to_dict())
        day = query["date"].isoformat() if query.get("date") else None
        accept = request.accept_mimetypes
        wants_csv = accept.best_match(["application/json", "text/csv"]) == "text/csv"
        if wants_csv:
            report = self.payment_rpc.settlement_report(actor(principal), agency, day, "csv")
            name = f"settlement-{agency}-{day or 'today'}.csv"
            return Response(
                report["csv"],
                mimetype="text/csv",
                headers={"Content-Disposition": f'attachment; filename="{name}"'},
            )
        return ok(self.payment_rpc.settlement_report(actor(principal), agency, day, "json"))

    @route(
        "GET",
        "/v1/agencies/{agency}/reconciliation",
        roles=AGENCY_ADMIN,
        agency_param="agency",
        query=contracts.SettlementQuerySchema,
        response=schemas.ReconciliationSchema,
        summary="Mismatches between the providers' view and ours for the day's invoices",
    )
    def get_reconciliation(self, request, principal, agency):
        query = contracts.shared(contracts.SettlementQuerySchema).load(request.args.to_dict())
        day = query["date"].isoformat() if query.get("date") else None
        return ok(self.payment_rpc.reconciliation(actor(principal), agency, day))
