"""Rating use cases, one module per verb: invitations from ticket and payment facts
(:mod:`.invitations`), one-time submission (:mod:`.submissions`) and the aggregate read model it
folds into (:mod:`.readmodel`), published summaries and the leaderboard (:mod:`.summaries`),
complaints (:mod:`.complaints`) and the copy of agency names (:mod:`.catalogue`).

Each function takes the unit of work, the frozen settings and plain values; the rules themselves
live in ``mpp_rating.domain`` and are only called from here. The entry points use the names
below.
"""

from mpp_rating.usecases.catalogue import on_agency_registered
from mpp_rating.usecases.common import Settings
from mpp_rating.usecases.complaints import escalate_overdue, list_complaints, respond_to_complaint
from mpp_rating.usecases.invitations import on_payment_settled, on_ticket_completed
from mpp_rating.usecases.readmodel import (
    fold_rating,
    rating_from_payload,
    read_buckets,
    recompute_from_ratings,
)
from mpp_rating.usecases.submissions import submit_rating
from mpp_rating.usecases.summaries import leaderboard, publish_comment, summary

__all__ = [
    "Settings",
    "escalate_overdue",
    "fold_rating",
    "leaderboard",
    "list_complaints",
    "on_agency_registered",
    "on_payment_settled",
    "on_ticket_completed",
    "publish_comment",
    "rating_from_payload",
    "read_buckets",
    "recompute_from_ratings",
    "respond_to_complaint",
    "submit_rating",
    "summary",
]
