"""JSON logs carrying service, correlation id and event id.

Wired through each service's ``config.yaml`` (``LOGGING``, a ``logging.config.dictConfig``), so
``nameko run`` configures them before any service code runs.
"""

from __future__ import annotations

import logging

from pythonjsonlogger.json import JsonFormatter

from mpp_chassis import context


class ContextFilter(logging.Filter):
    """Stamps every record with the service name and the current correlation and event ids."""

    def __init__(self, service: str = "") -> None:
        super().__init__()
        self.service = service

    def filter(self, record: logging.LogRecord) -> bool:
        record.service = self.service
        if getattr(record, "correlation_id", None) is None:
            record.correlation_id = context.correlation_id.get()
        if getattr(record, "event_id", None) is None:
            record.event_id = context.event_id.get()
        return True


def json_formatter() -> logging.Formatter:
    return JsonFormatter(
        "%(asctime)s %(levelname)s %(name)s %(service)s %(correlation_id)s %(event_id)s "
        "%(message)s",
        rename_fields={"asctime": "ts", "levelname": "level", "name": "logger"},
    )
