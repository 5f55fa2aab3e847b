"""Settings and small helpers shared by the rating use cases."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from mpp_rating.domain import ikm

#: How many published comments a public summary shows (newest first).
PUBLISHED_COMMENTS_SHOWN = 20


@dataclass(frozen=True)
class Settings:
    mall_timezone: str = "Asia/Jakarta"
    token_days: int = 7
    ikm_weight: ikm.Weight = "exact"

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.mall_timezone)


def now_utc() -> datetime:
    return datetime.now(UTC)


def decimal_text(value) -> str | None:
    return None if value is None else str(value)


def iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()
