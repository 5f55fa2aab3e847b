"""Local or deployed: a deployed service refuses to start on a secret it would take from a laptop.

``MALL_ENVIRONMENT`` (each ``config.yaml``) is ``local`` (the default: ``make run``, the tests) or
``deployed`` (Compose and every Kubernetes overlay set it). A local mall runs on the public
defaults in ``config.yaml``; a deployed one must not: before any entry point starts, the
:class:`StartupCheck` of each service looks at the secrets the service reads (its own table of
:class:`Secret` rows plus the broker and database URLs every service has) and at its own extra
rules, and stops the process with one line naming every problem (exit status 78, no traceback)
when a secret is missing, empty, a local default or an example's ``change-me`` placeholder.
Settings every mode depends on (the mall's time zone) are refused in any environment.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from nameko.extensions import DependencyProvider

from mpp_contracts.mallday import SUPPORTED_TIMEZONES

_log = logging.getLogger(__name__)

ENVIRONMENTS = ("local", "deployed")
EXIT_CONFIG = 78  # EX_CONFIG (sysexits.h): a configuration error, not a crash worth a retry loop
PLACEHOLDER = "change-me"  # what deploy/.env.example and secret.example.yaml ship


def _always(_config: Mapping) -> bool:
    return True


@dataclass(frozen=True)
class Secret:
    """One secret a service reads. ``variable`` is what operators set; ``key`` the config key when
    it differs (``DB_URL`` from ``QUEUE_DB_URL``); ``local_default`` what ``config.yaml`` falls
    back to; ``needed`` says whether this configuration uses it (a provider's key only when that
    provider is configured); ``environment_only`` for secrets read from the environment and never
    from ``config.yaml``."""

    variable: str
    local_default: str = ""
    key: str | None = None
    needed: Callable[[Mapping], bool] = _always
    environment_only: bool = False

    def value(self, config: Mapping) -> str:
        if self.environment_only:
            raw = os.environ.get(self.variable)
        else:
            raw = config.get(self.key or self.variable)
        return "" if raw is None else str(raw).strip()

    def problem(self, config: Mapping) -> str | None:
        if not self.needed(config):
            return None
        value = self.value(config)
        if not value:
            return f"{self.variable} is not set"
        if self.local_default and value == self.local_default:
            return f"{self.variable} is the local default"
        if PLACEHOLDER in value:
            return f"{self.variable} is still the example's {PLACEHOLDER} placeholder"
        return None


def when(key: str, value: str, default: str = "") -> Callable[[Mapping], bool]:
    """A ``needed`` predicate: the config's ``key`` (``default`` if unset) equals ``value``."""

    def needed(config: Mapping) -> bool:
        return str(config.get(key) or default).strip() == value

    return needed


def refused_setting(
    key: str, value: str, default: str, why: str
) -> Callable[[Mapping], str | None]:
    """A rule: a deployed service refuses ``key`` = ``value`` (``default`` when unset)."""

    def rule(config: Mapping) -> str | None:
        return f"{key}={value} {why}" if when(key, value, default)(config) else None

    return rule


NO_SIMULATOR = refused_setting(
    "PAYMENT_PROVIDER",
    "simulator",
    "simulator",
    "is the offline test double (set midtrans or xendit)",
)
"""Deployed, nobody may mark an invoice paid by asking: the payment simulator stays on laptops."""


def common_secrets(service: str) -> tuple[Secret, ...]:
    """What every service reads: the broker's URL (with its password) and its own database's."""
    return (
        Secret("AMQP_URI", "amqp://guest:guest@localhost:5672/"),
        Secret(f"{service.upper()}_DB_URL", f"sqlite:///var/{service}.db", key="DB_URL"),
    )


def timezone_problem(config: Mapping) -> str | None:
    """The mall's day is computed in ``MALL_TIMEZONE`` by every service: one the mall does not
    support is refused in any mode (the queue answered 500 to every slots read on one)."""
    timezone = str(config.get("MALL_TIMEZONE") or "Asia/Jakarta").strip()
    if timezone in SUPPORTED_TIMEZONES:
        return None
    return f"MALL_TIMEZONE={timezone!r} is not one of {', '.join(SUPPORTED_TIMEZONES)}"


def environment_of(config: Mapping) -> str:
    return str(config.get("MALL_ENVIRONMENT") or "local").strip()


def refusals(
    config: Mapping,
    secrets: tuple[Secret, ...],
    rules: tuple[Callable[[Mapping], str | None], ...] = (),
) -> list[str]:
    """Every reason a service with this ``config`` must not start (empty: it may start)."""
    environment = environment_of(config)
    if environment not in ENVIRONMENTS:
        return [f"MALL_ENVIRONMENT={environment!r} is neither 'local' nor 'deployed'"]
    everywhere = [p for p in (timezone_problem(config),) if p]
    if environment == "local":
        return everywhere
    problems = [secret.problem(config) for secret in secrets]
    problems += [rule(config) for rule in rules]
    return everywhere + [p for p in problems if p]


class StartupCheck(DependencyProvider):
    """Declared on a service class; its ``setup`` runs before any entry point starts.

    ``secrets`` is the service's own table (one :class:`Secret` per line: adding a secret is one
    line); the broker and database URLs are added for every service. ``rules`` are extra checks
    for a deployed service, each returning a problem or None.
    """

    def __init__(
        self,
        secrets: tuple[Secret, ...] = (),
        rules: tuple[Callable[[Mapping], str | None], ...] = (),
    ) -> None:
        self.secrets = secrets
        self.rules = rules

    def setup(self) -> None:
        service = self.container.service_name
        table = (*common_secrets(service), *self.secrets)
        problems = refusals(self.container.config, table, self.rules)
        if problems:
            refuse(service, environment_of(self.container.config), problems)

    def get_dependency(self, worker_ctx) -> None:
        return None


def refuse(service: str, environment: str, problems: list[str]) -> None:
    """Log the refusal and leave the process at once with one line on stderr.

    ``SystemExit`` from a greenthread reaches the main one (eventlet re-raises it there), so
    ``nameko run`` ends with this line and no traceback, before any consumer or listener starts.
    """
    line = f"{service} refuses to start (MALL_ENVIRONMENT={environment}): " + "; ".join(problems)
    _log.critical(line)
    for handler in logging.getLogger().handlers:
        handler.flush()
    print(line, file=sys.stderr, flush=True)
    raise SystemExit(EXIT_CONFIG)
