"""Alembic migrations per service, applied by one command.

    python -m mpp_chassis.migrate queue payment rating gateway

Each service keeps its revisions in ``mpp_<svc>/migrations``; the database URL comes from the same
environment variable the service reads (``QUEUE_DB_URL``, …) with the same default.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from alembic import command
from alembic.config import Config

SERVICES = ("queue", "payment", "rating", "gateway")


def default_url(service: str) -> str:
    return os.environ.get(f"{service.upper()}_DB_URL", f"sqlite:///var/{service}.db")


def alembic_config(service: str, url: str | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", f"mpp_{service}:migrations")
    cfg.set_main_option("sqlalchemy.url", url or default_url(service))
    return cfg


def upgrade(service: str, url: str | None = None) -> None:
    url = url or default_url(service)
    if url.startswith("sqlite:///") and not url.startswith("sqlite:////"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    command.upgrade(alembic_config(service, url), "head")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("services", nargs="*", default=list(SERVICES), choices=SERVICES)
    args = parser.parse_args(argv)
    for service in args.services:
        upgrade(service)
        print(f"migrated {service}: {default_url(service).split('@')[-1]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
