"""Alembic migrations per service, applied by one command.

    python -m mpp_chassis.migrate [service …]   (every installed service's database by default)

A service declares its database as an ``mpp.databases`` entry point in its pyproject.toml (name:
the service, value: its Alembic package, ``mpp_<svc>.migrations``), so the chassis names no
service and an image knows only the service it holds. The database URL comes from the same
environment variable the service reads (``QUEUE_DB_URL``, …) with the same default.
"""

from __future__ import annotations

import argparse
import os
import sys
from importlib.metadata import entry_points
from pathlib import Path

from alembic import command
from alembic.config import Config

ENTRY_POINT_GROUP = "mpp.databases"


def databases() -> dict[str, str]:
    """The installed services' databases, by service name: each one's migrations package."""
    found = {point.name: point.value for point in entry_points(group=ENTRY_POINT_GROUP)}
    return dict(sorted(found.items()))


def default_url(service: str) -> str:
    return os.environ.get(f"{service.upper()}_DB_URL", f"sqlite:///var/{service}.db")


def alembic_config(service: str, url: str | None = None) -> Config:
    try:
        package, _, resource = databases()[service].rpartition(".")
    except KeyError:
        raise LookupError(
            f"no database {service!r} installed (entry points {ENTRY_POINT_GROUP!r}: "
            f"{', '.join(databases()) or 'none'})"
        ) from None
    cfg = Config()
    cfg.set_main_option("script_location", f"{package}:{resource}")
    cfg.set_main_option("sqlalchemy.url", url or default_url(service))
    return cfg


def upgrade(service: str, url: str | None = None) -> None:
    url = url or default_url(service)
    config = alembic_config(service, url)
    if url.startswith("sqlite:///") and not url.startswith("sqlite:////"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    command.upgrade(config, "head")


def main(argv: list[str] | None = None) -> int:
    installed = list(databases())
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    # no argparse ``choices``: with ``nargs="*"`` it checks the default list as one value and so
    # refused a bare ``make migrate``
    parser.add_argument("services", nargs="*", metavar="service", help=", ".join(installed))
    args = parser.parse_args(argv)
    unknown = [s for s in args.services if s not in installed]
    if unknown:
        parser.error(f"not installed: {', '.join(unknown)} (choose from {', '.join(installed)})")
    for service in args.services or installed:
        upgrade(service)
        print(f"migrated {service}: {default_url(service).split('@')[-1]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
