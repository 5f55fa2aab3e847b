"""List, inspect and replay the messages in the dead-letter queue (``mpp.dead-letters``).

    python -m mpp_chassis.dlq list                      # one line per dead letter
    python -m mpp_chassis.dlq show <id>                 # headers, properties and body of one
    python -m mpp_chassis.dlq replay <id> [<id> ...]    # back to the queue it died in
    python -m mpp_chassis.dlq replay --all [--queue Q]  # every one (of queue Q)

``make dlq ARGS="list"`` runs the same. The broker is ``--amqp-uri`` or ``AMQP_URI``.

A dead letter is identified by its ``message_id`` (the event id the outbox set), else the ``id``
of its JSON body, else its position (``#3``). The command walks the queue one message at a time
and never reads ahead: listing (the first 100 unless ``--limit``) takes the messages it shows
without acknowledging them and hands them back when done, so it changes nothing; ``replay``
acknowledges each message as soon as it is replayed, so even a long dead-letter queue is never
held whole, and a walk covers the messages queued when it began. Replaying publishes the message,
with its body, properties and headers (less the broker-managed ``x-delivery-count``), through
the default exchange to the queue it belongs to (``x-mpp-queue``, set when a handler's retries
ran out; else the broker's ``x-first-death-queue``), with its retry steps reset, waits for the
broker's confirm, and only then removes it from the dead letters. A crash between the two can
replay a message twice; the consumers are idempotent (they claim each event id once), so the
event is still applied once. Fix the cause of the failure before replaying: a message that
fails again returns to the dead letters after the delivery limit.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from itertools import islice
from typing import Any

from kombu import Connection, Producer

from mpp_chassis.messaging import (
    DEAD_LETTER_QUEUE,
    DELAY_HEADER,
    ORIGIN_HEADER,
    REASON_HEADER,
    RETRIES_HEADER,
    dead_letter_declarations,
)

DEFAULT_AMQP_URI = "amqp://guest:guest@localhost:5672/"
# not replayed: the broker's delivery count, and the retry steps (a replay starts them afresh)
BROKER_MANAGED_HEADERS = ("x-delivery-count", RETRIES_HEADER, DELAY_HEADER, REASON_HEADER)
DEFAULT_LIST_LIMIT = 100  # `list --limit N` for more, `--limit 0` for all
KEPT_PROPERTIES = ("content_type", "content_encoding", "message_id", "correlation_id", "priority")


@dataclass
class DeadLetter:
    key: str
    message: Any  # kombu Message, unacknowledged while the session is open

    @property
    def headers(self) -> dict:
        return dict(self.message.headers or {})

    @property
    def origin_queue(self) -> str | None:
        headers = self.headers
        if headers.get(ORIGIN_HEADER):  # dead-lettered by the handler once its retries ran out
            return _text(headers[ORIGIN_HEADER])
        if headers.get("x-first-death-queue"):
            return _text(headers["x-first-death-queue"])
        deaths = headers.get("x-death") or []
        return _text(deaths[0].get("queue")) if deaths else None

    @property
    def reason(self) -> str:
        headers = self.headers
        if headers.get(REASON_HEADER):
            return _text(headers[REASON_HEADER])
        if headers.get("x-first-death-reason"):
            return _text(headers["x-first-death-reason"])
        deaths = headers.get("x-death") or []
        return _text(deaths[0].get("reason")) if deaths else "?"

    @property
    def body(self) -> Any:
        raw = self.message.body
        try:
            return json.loads(raw)
        except (TypeError, ValueError):
            return raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw

    def summary(self) -> dict:
        body = self.body if isinstance(self.body, dict) else {}
        return {
            "id": self.key,
            "type": body.get("type") or self.message.delivery_info.get("routing_key"),
            "queue": self.origin_queue,
            "reason": self.reason,
            "occurred_at": body.get("occurred_at"),
            "correlation_id": body.get("correlation_id"),
        }

    def details(self) -> dict:
        properties = {
            name: getattr(self.message, name, None) or self.message.properties.get(name)
            for name in KEPT_PROPERTIES
        }
        return {
            **self.summary(),
            "headers": _plain(self.headers),
            "properties": properties,
            "body": self.body,
        }


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _plain(value: Any) -> Any:
    """Headers as JSON-friendly values (x-death holds timestamps and bytes)."""
    if isinstance(value, dict):
        return {_text(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)


@contextmanager
def session(amqp_uri: str) -> Iterator[tuple[Any, Iterator[DeadLetter], int]]:
    """Walk the dead letters one at a time: (connection, letters, how many were queued at the
    start). Each letter is taken without acknowledging it; whatever is neither replayed nor
    acknowledged goes back to the queue when the session closes. Nothing is read ahead: a walk
    that stops early (a limit, the one letter sought) takes no more than it looked at, and one
    that replays as it goes holds only the letters it passed over."""
    with Connection(amqp_uri, transport_options={"confirm_publish": True}) as conn:
        channel = conn.channel()
        _, queue = dead_letter_declarations()
        bound = queue(channel)
        bound.declare()
        total = bound.queue_declare(passive=True).message_count
        try:
            yield conn, _walk(bound, total), total
        finally:
            channel.close()  # unacknowledged messages return to mpp.dead-letters


def _walk(bound, total: int) -> Iterator[DeadLetter]:
    """The letters queued when the walk began, in order; letters dead-lettered meanwhile (a
    replayed event failing again, say) wait for the next walk instead of being met twice."""
    for position in range(1, total + 1):
        message = bound.get(no_ack=False)
        if message is None:
            return
        key = message.properties.get("message_id")
        if not key:
            try:
                key = json.loads(message.body).get("id")
            except (TypeError, ValueError, AttributeError):
                key = None
        yield DeadLetter(_text(key) if key else f"#{position}", message)


def replay_one(conn, letter: DeadLetter) -> str:
    """Publish one dead letter back to its queue (confirmed), then drop it from the DLQ."""
    target = letter.origin_queue
    if not target:
        raise LookupError(f"{letter.key}: no x-first-death-queue/x-death header to replay to")
    channel = conn.channel()
    try:
        channel.queue_declare(queue=target, passive=True)  # never create a queue by mistake
        headers = {k: v for k, v in letter.headers.items() if k not in BROKER_MANAGED_HEADERS}
        message = letter.message
        Producer(channel).publish(
            message.body,
            exchange="",
            routing_key=target,
            headers=headers,
            content_type=message.content_type,
            content_encoding=message.content_encoding,
            message_id=message.properties.get("message_id"),
            correlation_id=message.properties.get("correlation_id"),
            delivery_mode=2,
            mandatory=True,
        )
    finally:
        channel.close()
    letter.message.ack()
    return target


def list_letters(amqp_uri: str, limit: int | None = DEFAULT_LIST_LIMIT) -> list[dict]:
    """Summaries of the first ``limit`` dead letters (all when None)."""
    with closing(iter_letters(amqp_uri)) as letters:
        return list(islice(letters, limit))


def iter_letters(amqp_uri: str) -> Iterator[dict]:
    """Summaries of the dead letters, one at a time; stopping early takes no more."""
    with session(amqp_uri) as (_, letters, _total):
        for letter in letters:
            yield letter.summary()


def count_letters(amqp_uri: str) -> int:
    with session(amqp_uri) as (_, _letters, total):
        return total


def show_letter(amqp_uri: str, key: str) -> dict | None:
    with session(amqp_uri) as (_, letters, _total):
        for letter in letters:
            if letter.key == key:
                return letter.details()
    return None


def replay(
    amqp_uri: str, keys: list[str] | None = None, queue: str | None = None
) -> list[tuple[str, str]]:
    """Replay the dead letters with these keys (all when ``keys`` is None), optionally only
    those that died in ``queue``; returns (key, queue) for each one replayed. Each is replayed
    and acknowledged as it is met, so a long dead-letter queue is never held whole."""
    done: list[tuple[str, str]] = []
    wanted = None if keys is None else set(keys)
    with session(amqp_uri) as (conn, letters, _total):
        for letter in letters:
            if wanted is not None and letter.key not in wanted:
                continue
            if queue is not None and letter.origin_queue != queue:
                continue
            done.append((letter.key, replay_one(conn, letter)))
            if wanted is not None:
                wanted.discard(letter.key)
                if not wanted:
                    break
    return done


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m mpp_chassis.dlq", description=f"Dead letters in {DEAD_LETTER_QUEUE}."
    )
    parser.add_argument("--amqp-uri", default=os.environ.get("AMQP_URI", DEFAULT_AMQP_URI))
    commands = parser.add_subparsers(dest="command", required=True)
    listing = commands.add_parser("list", help="one line per dead letter")
    listing.add_argument(
        "--limit", type=int, default=DEFAULT_LIST_LIMIT, help="at most this many (0: all)"
    )
    listing.add_argument("--json", action="store_true", help="JSON lines instead of a table")
    show = commands.add_parser("show", help="headers, properties and body of one dead letter")
    show.add_argument("id")
    again = commands.add_parser("replay", help="publish dead letters back to their queues")
    again.add_argument("ids", nargs="*")
    again.add_argument("--all", action="store_true", help="every dead letter")
    again.add_argument("--queue", help="only those that died in this queue")
    args = parser.parse_args(argv)

    if args.command == "list":
        shown = 0
        with closing(iter_letters(args.amqp_uri)) as letters:
            for row in islice(letters, args.limit or None):
                shown += 1
                if args.json:
                    print(json.dumps(row))
                else:
                    print(f"{row['id']}  {row['type']}  {row['queue']}  {row['reason']}")
        total = count_letters(args.amqp_uri)
        more = f" (the first {shown}; --limit 0 lists all)" if total > shown else ""
        print(f"{total} dead letter(s) in {DEAD_LETTER_QUEUE}{more}", file=sys.stderr)
        return 0
    if args.command == "show":
        details = show_letter(args.amqp_uri, args.id)
        if details is None:
            print(f"no dead letter {args.id}", file=sys.stderr)
            return 1
        print(json.dumps(details, indent=2, default=str))
        return 0
    if not args.ids and not args.all:
        parser.error("replay needs ids or --all")
    done = replay(args.amqp_uri, None if args.all else args.ids, args.queue)
    for key, queue in done:
        print(f"replayed {key} -> {queue}")
    missing = set(args.ids) - {key for key, _ in done}
    for key in sorted(missing):
        print(f"no dead letter {key}", file=sys.stderr)
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
