"""``mpp dlq`` and ``mpp outbox``: the operators' tools of the chassis, through the broker and
the services' databases (not the gateway's API)."""

from __future__ import annotations

import json
import os
import sys

import click

from mpp_cli.output import OUTPUT, console, emit, errors


def _amqp_uri(value: str | None) -> str:
    return value or os.environ.get("AMQP_URI") or "amqp://guest:guest@localhost:5672/"


AMQP = click.option("--amqp-uri", help="the broker (default: AMQP_URI)")


@click.group()
def dlq():
    """Dead letters (mpp_chassis.dlq, as `make dlq`): list, show, replay."""


@dlq.command("list")
@click.option(
    "--limit", type=int, default=100, show_default=True, help="At most this many (0: all)."
)
@AMQP
@OUTPUT
def dlq_list(limit, amqp_uri, output):
    """One row per dead letter: id, event type, queue it died in, reason."""
    from mpp_chassis import dlq as tool

    uri = _amqp_uri(amqp_uri)
    rows = tool.list_letters(uri, limit or None)
    total = tool.count_letters(uri)
    title = (
        f"Dead letters ({total})"
        if total <= len(rows)
        else f"Dead letters (first {len(rows)} of {total})"
    )
    emit(output, rows, ["id", "type", "queue", "reason"], title)


@dlq.command("show")
@click.argument("letter")
@AMQP
def dlq_show(letter, amqp_uri):
    """Headers, properties and body of one dead letter (JSON)."""
    from mpp_chassis import dlq as tool

    details = tool.show_letter(_amqp_uri(amqp_uri), letter)
    if details is None:
        errors.print(f"no dead letter {letter}")
        sys.exit(1)
    click.echo(json.dumps(details, indent=2, default=str))


@dlq.command("replay")
@click.argument("letters", nargs=-1)
@click.option("--all", "everything", is_flag=True, help="every dead letter")
@click.option("--queue", help="only those that died in this queue")
@AMQP
def dlq_replay(letters, everything, queue, amqp_uri):
    """Publish dead letters back to the queues they died in."""
    from mpp_chassis import dlq as tool

    if not letters and not everything:
        raise click.UsageError("replay needs ids or --all")
    done = tool.replay(_amqp_uri(amqp_uri), None if everything else list(letters), queue)
    for key, target in done:
        console.print(f"replayed {key} -> {target}")
    missing = set(letters) - {key for key, _ in done}
    for key in sorted(missing):
        errors.print(f"no dead letter {key}")
    sys.exit(1 if missing else 0)


@click.group()
def outbox():
    """Parked events (mpp_chassis.outbox): list and republish, per service (<SERVICE>_DB_URL)."""


class InstalledDatabase(click.ParamType):
    """A service whose database is installed here (its ``mpp.databases`` entry point)."""

    name = "service"

    def convert(self, value, param, ctx):
        from mpp_chassis.migrate import databases

        installed = list(databases())
        if value not in installed:
            self.fail(f"{value!r} is not one of {', '.join(installed)}", param, ctx)
        return value


def _outbox_of(service):
    from mpp_chassis.outbox import open_outbox

    try:
        return open_outbox(service)
    except LookupError as exc:
        raise click.UsageError(str(exc)) from None


@outbox.command("parked")
@click.argument("service", type=InstalledDatabase())
@click.option("--type", "event_type", help="only this event type")
@OUTPUT
def outbox_parked(service, event_type, output):
    """Events parked because no queue took them, oldest first."""
    from mpp_chassis.outbox import parked

    rows = parked(*_outbox_of(service), event_type)
    emit(output, rows, ["event_id", "type", "created_at", "parked_at"], f"Parked in {service}")


@outbox.command("republish")
@click.argument("service", type=InstalledDatabase())
@click.option("--type", "event_type", help="only this event type")
def outbox_republish(service, event_type):
    """Hand parked events back to the service's outbox relay."""
    from mpp_chassis.outbox import republish

    count = republish(*_outbox_of(service), event_type)
    console.print(f"{count} parked event(s) of {service} returned to the outbox relay")
