"""JSON logs carrying service, correlation id and event id.

Wired through each service's ``config.yaml`` (``LOGGING``, a ``logging.config.dictConfig``), so
``nameko run`` configures them before any service code runs.
"""

from __future__ import annotations

import logging

from pythonjsonlogger.json import JsonFormatter

from mpp_chassis import context

EXPECTED_ERROR_LOGGER = "nameko.containers"
EXPECTED_ERROR_PREFIX = "(expected) error handling worker"


class ContextFilter(logging.Filter):
    """Stamps every record with the service name and the current correlation and event ids.

    It also drops nameko's WARNING "(expected) error handling worker …" (with its traceback),
    logged for every error an entrypoint declares expected: an ordinary 4xx (a ticket not
    found, a wrong state). The worker's own line (``metrics.Metrics``: "<entrypoint> rejected")
    and the gateway's access log already say it; unexpected errors stay ERRORs with traces."""

    def __init__(self, service: str = "") -> None:
        super().__init__()
        self.service = service

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name == EXPECTED_ERROR_LOGGER and str(record.msg).startswith(
            EXPECTED_ERROR_PREFIX
        ):
            return False
        record.service = self.service
        if getattr(record, "correlation_id", None) is None:
            record.correlation_id = context.correlation_id.get()
        if getattr(record, "event_id", None) is None:
            record.event_id = context.event_id.get()
        return True


def json_formatter() -> logging.Formatter:
    """The services' log format. Its lines carry no thread, process or source line, so records
    are not asked to collect them (the switches of the logging HOWTO's "Optimization"):
    eventlet's green ``current_thread``, which ``LogRecord`` calls for ``threadName``, lists
    every thread each time, and was a fifth of the CPU of a worker's metrics and log line."""
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    logging._srcfile = None  # no caller lookup (findCaller): pathname, lineno, funcName unused
    return JsonFormatter(
        "%(asctime)s %(levelname)s %(name)s %(service)s %(correlation_id)s %(event_id)s "
        "%(message)s",
        rename_fields={"asctime": "ts", "levelname": "level", "name": "logger"},
    )
