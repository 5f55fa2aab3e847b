"""What a piece of code sends to the database: the round-trip counts of issue 20's tests."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from sqlalchemy import event
from sqlalchemy.engine import Engine


@dataclass
class Sent:
    statements: list[str] = field(default_factory=list)  # each on one line, in order
    commits: int = 0
    prepared: list[str] = field(default_factory=list)  # those of them sent as EXECUTE mpp_…


@contextmanager
def recording(engine: Engine) -> Iterator[Sent]:
    """The statements executed and the commits made on ``engine`` inside the block. A statement
    run prepared (``EXECUTE mpp_…``, mpp_chassis.prepared) is recorded as its own text: the
    ``PREPARE`` that a connection's first use of it costs is not counted."""
    sent = Sent()

    def execute(conn, cursor, statement, parameters, context, executemany) -> None:
        executed = statement.startswith("EXECUTE mpp_")
        if context is not None:  # the statement's own text, before any rewrite
            statement = context.statement
        sent.statements.append(" ".join(statement.split()))
        if executed:
            sent.prepared.append(sent.statements[-1])

    def commit(conn) -> None:
        sent.commits += 1

    event.listen(engine, "before_cursor_execute", execute)
    event.listen(engine, "commit", commit)
    try:
        yield sent
    finally:
        event.remove(engine, "before_cursor_execute", execute)
        event.remove(engine, "commit", commit)


def statements_of(engine: Engine, action: Callable[[], object]) -> list[str]:
    """The statements ``action()`` executes on ``engine``."""
    with recording(engine) as sent:
        action()
    return sent.statements
