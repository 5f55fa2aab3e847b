"""Payment providers behind one port: ``simulator`` (offline), ``midtrans``-style, ``xendit``-style.

Every adapter answers the same four questions: open a charge for an invoice, refund part of it,
read (and authenticate) a notification, and tell its own view of an order for reconciliation.
Status vocabularies and signature schemes are the pure rules of ``mpp_payment.domain``; what is
here is wire formats. Outgoing calls go through :class:`~mpp_payment.adapters.http.ProviderHttp`.

The port and what adapters share: ``base``; one module per provider.
"""

from mpp_payment.adapters.providers.base import (
    METHODS,
    PROVIDERS,
    Charge,
    ChargeRequest,
    Notification,
    PaymentProvider,
    RefundDone,
    _json_object,
)
from mpp_payment.adapters.providers.midtrans import MidtransProvider
from mpp_payment.adapters.providers.simulator import SimulatorProvider
from mpp_payment.adapters.providers.xendit import XenditProvider

__all__ = [
    "METHODS",
    "PROVIDERS",
    "Charge",
    "ChargeRequest",
    "MidtransProvider",
    "Notification",
    "PaymentProvider",
    "RefundDone",
    "SimulatorProvider",
    "XenditProvider",
    "_json_object",
]
