"""The ``mpp`` command: ``mpp --help`` lists the commands; each read takes ``--output json``."""

from __future__ import annotations

import json
import re
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import click

from mpp_cli import manifest
from mpp_cli.client import ApiError, Client, Settings, UsageError
from mpp_cli.operators import dlq, outbox
from mpp_cli.output import OUTPUT, console, emit, errors
from mpp_cli.plan import Result, reconcile

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "mall.yaml"


class Context:
    def __init__(self, url, key, profile):
        self.args = (url, key, profile)
        self._client: Client | None = None

    @property
    def client(self) -> Client:
        if self._client is None:
            self._client = Client(Settings.resolve(*self.args))
        return self._client


def run(fn):
    """Turn API and usage errors into one red line and exit status 2 (1 is kept for drift)."""

    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except ApiError as exc:
            click.echo(f"error: {exc}", err=True)
            if exc.details:
                click.echo(json.dumps(exc.details, ensure_ascii=False), err=True)
            sys.exit(2)
        except (UsageError, manifest.ManifestError) as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(2)

    wrapper.__name__ = fn.__name__
    wrapper.__doc__ = fn.__doc__
    return wrapper


@click.group()
@click.option("--url", help="the gateway (default: MALL_URL, the profile, http://localhost:8000)")
@click.option("--key", help="API key (default: MPP_KEY, the profile, the local admin key)")
@click.option("--profile", help="a profile of ~/.config/mpp/profiles.yaml (or MPP_CONFIG)")
@click.pass_context
def cli(ctx, url, key, profile):
    """mpp: run a Mal Pelayanan Publik through its gateway API.

    Profile file (~/.config/mpp/profiles.yaml): profiles: {default: {url: ..., key: ...}}.
    """
    ctx.obj = Context(url, key, profile)


cli.add_command(dlq)  # the operators' tools: mpp_cli.operators
cli.add_command(outbox)


# -- apply / diff


def _load(path: str) -> dict:
    text = Path(path).read_text(encoding="utf-8")
    return manifest.load(text, path)


def _print_changes(result: Result, verb: str) -> None:
    colours = {"+": "green", "~": "yellow", "-": "red", "!": "magenta"}
    for change in result.changes:
        colour = colours[change.op]
        details = "; ".join(change.details)
        console.print(
            f"[{colour}]{change.op} {change.kind} {change.name}[/{colour}]  {details}",
            highlight=False,
        )
    drift = [c for c in result.changes if c.drift]
    if not drift:
        console.print("no changes: the mall matches the file")
    else:
        console.print(f"{len(drift)} change(s) {verb}")


def _print_keys(result: Result) -> None:
    """One line per key, never wrapped (a secret must copy whole)."""
    if not result.keys:
        return
    click.echo(f"{len(result.keys)} new key(s), shown once: store them now")
    for row in result.keys:
        click.echo(f"  {row['agency']}  {row['role']}  {row['label']!r}  id {row['id']}")
        click.echo(f"    {row['key']}")


@cli.command()
@click.option("-f", "--file", "path", required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--dry-run", is_flag=True, help="show what would change, change nothing")
@click.option("--prune", is_flag=True, help="also unplug/close/revoke what the file omits")
@OUTPUT
@click.pass_obj
@run
def apply(obj, path, dry_run, prune, output):
    """Make the mall match a mall file (validated whole first; re-applying changes nothing)."""
    data = _load(path)
    result = reconcile(obj.client, data, execute=not dry_run, prune=prune)
    if output == "json":
        payload = {"changes": [c.as_dict() for c in result.changes], "keys": result.keys}
        click.echo(json.dumps(payload, indent=2, ensure_ascii=False))
        return
    _print_changes(result, "would be made (dry run)" if dry_run else "made")
    _print_keys(result)


@cli.command()
@click.option("-f", "--file", "path", required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--prune", is_flag=True, help="count what the file omits as drift too")
@OUTPUT
@click.pass_obj
@run
def diff(obj, path, prune, output):
    """Show what `apply` would change; exit status 1 when the mall differs from the file."""
    data = _load(path)
    result = reconcile(obj.client, data, execute=False, prune=prune)
    if output == "json":
        click.echo(json.dumps([c.as_dict() for c in result.changes], indent=2, ensure_ascii=False))
    else:
        _print_changes(result, "to make")
    sys.exit(1 if result.drift else 0)


@cli.command()
@click.option("-f", "--file", "path", required=True, type=click.Path(exists=True, dir_okay=False))
@run
def validate(path):
    """Check a mall file without a mall (every problem, with its line)."""
    data = _load(path)
    agencies = data.get("agencies") or []
    services = sum(len(a.get("services") or []) for a in agencies)
    console.print(f"{path}: valid ({len(agencies)} agencies, {services} services)")


# -- get


@cli.group()
def get():
    """Read the mall: agencies, services, counters, tickets, complaints."""


def _agency_id(client: Client, code_or_id: str) -> str:
    for agency in client.all("/v1/agencies"):
        if code_or_id in (agency["code"], agency["id"]):
            return agency["id"]
    raise UsageError(f"no agency {code_or_id!r}")


@get.command("agencies")
@OUTPUT
@click.pass_obj
@run
def get_agencies(obj, output):
    """The mall's agencies, by code."""
    rows = obj.client.all("/v1/agencies")
    emit(output, rows, ["code", "name", "id"], "Agencies")


@get.command("services")
@click.option("--agency", help="agency code or id")
@OUTPUT
@click.pass_obj
@run
def get_services(obj, agency, output):
    """Active services: fee, SLA, prefix, quota, booking slot length."""
    params = {"agency": _agency_id(obj.client, agency)} if agency else {}
    rows = obj.client.all("/v1/services", params)
    codes = {a["id"]: a["code"] for a in obj.client.all("/v1/agencies")}
    for row in rows:
        row["agency"] = codes.get(row["agency_id"])
        row["booking_slots"] = (row.get("booking") or {}).get("slot_minutes")
    rows.sort(key=lambda row: (row["agency"] or "", row["code"]))
    columns = ["agency", "code", "name", "fee_idr", "sla_minutes", "prefix", "daily_quota"]
    emit(output, rows, [*columns, "booking_slots", "id"], "Services")


@get.command("counters")
@click.option("--agency", help="agency code or id (default: every agency)")
@OUTPUT
@click.pass_obj
@run
def get_counters(obj, agency, output):
    """Counters (loket), open or closed, and the services each serves."""
    agencies = obj.client.all("/v1/agencies")
    if agency:
        agencies = [a for a in agencies if agency in (a["code"], a["id"])]
        if not agencies:
            raise UsageError(f"no agency {agency!r}")
    services = {s["id"]: s["code"] for s in obj.client.all("/v1/services")}
    rows = []
    for item in agencies:
        for counter in obj.client.all(f"/v1/agencies/{item['id']}/counters"):
            codes = [services.get(i, i) for i in counter["service_ids"]]
            rows.append({**counter, "agency": item["code"], "services": ", ".join(codes)})
    emit(output, rows, ["agency", "name", "is_open", "services", "id"], "Counters")


@get.command("tickets")
@click.argument("ids", nargs=-1)
@click.option("--agency", help="agency code or id (the latest calls)")
@OUTPUT
@click.pass_obj
@run
def get_tickets(obj, ids, agency, output):
    """Tickets by id (a staff or admin key: without the citizen's code and rating token);
    without ids, the day's latest calls (a display or admin key; a board shows no ticket ids)."""
    columns = ["number", "status", "service_code", "counter_name", "position", "id"]
    if ids:
        rows = [obj.client.get(f"/v1/tickets/{ticket}") for ticket in ids]
        emit(output, rows, columns, "Tickets")
        return
    params = {"recent": 50}
    if agency:
        params["agency"] = _agency_id(obj.client, agency)
    snapshot = obj.client.get("/v1/display", params=params)
    rows = snapshot["recent_calls"]
    columns = ["number", "kind", "counter_name", "called_at", "announcement"]
    emit(output, rows, columns, f"Latest calls, {snapshot['date']}")


@get.command("complaints")
@click.option("--agency", help="agency code or id (default: every agency)")
@click.option("--status", help="open, responded, resolved …")
@OUTPUT
@click.pass_obj
@run
def get_complaints(obj, agency, status, output):
    """Complaints from low or flagged ratings, with their response deadline."""
    agencies = obj.client.all("/v1/agencies")
    if agency:
        agencies = [a for a in agencies if agency in (a["code"], a["id"])]
        if not agencies:
            raise UsageError(f"no agency {agency!r}")
    rows = []
    params = {"status": status} if status else {}
    for item in agencies:
        for complaint in obj.client.all(f"/v1/agencies/{item['id']}/complaints", params):
            rows.append({**complaint, "agency": item["code"]})
    columns = ["agency", "status", "reason", "stars", "comment", "first_response_due", "id"]
    emit(output, rows, columns, "Complaints")


# -- keys


@cli.group()
def keys():
    """List, rotate and revoke API keys (an agency's with --agency, else the mall admin's)."""


def _keys_path(client: Client, agency: str | None) -> str:
    return f"/v1/agencies/{_agency_id(client, agency)}/api-keys" if agency else "/v1/api-keys"


DURATION = re.compile(r"^(\d+)([smhd])$")


def parse_duration(text: str) -> timedelta:
    match = DURATION.match(text.strip())
    if not match:
        raise UsageError(f"duration {text!r}: use e.g. 90s, 15m, 24h, 7d")
    unit = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}[match.group(2)]
    return timedelta(**{unit: int(match.group(1))})


@keys.command("list")
@click.option("--agency", help="agency code or id")
@click.option("--all", "everything", is_flag=True, help="revoked keys too")
@OUTPUT
@click.pass_obj
@run
def keys_list(obj, agency, everything, output):
    """Keys without their secrets (live ones; --all: revoked too)."""
    rows = obj.client.all(_keys_path(obj.client, agency))
    if not everything:
        rows = [row for row in rows if not row.get("revoked_at")]
    emit(output, rows, ["role", "label", "scope", "created_at", "revoked_at", "id"], "API keys")


@keys.command("revoke")
@click.argument("key_id")
@click.option("--agency", help="agency code or id (omit for a mall_admin key)")
@click.pass_obj
@run
def keys_revoke(obj, key_id, agency):
    """Revoke a key: it answers 401 from now on."""
    obj.client.delete(f"{_keys_path(obj.client, agency)}/{key_id}")
    console.print(f"revoked {key_id}")


@keys.command("rotate")
@click.argument("key_id")
@click.option("--agency", help="agency code or id (omit for a mall_admin key)")
@click.option("--overlap", default="24h", show_default=True, help="both keys work this long")
@click.option("--wait", is_flag=True, help="stay, then revoke the old key when the overlap ends")
@OUTPUT
@click.pass_obj
@run
def keys_rotate(obj, key_id, agency, overlap, wait, output):
    """Issue a key like KEY_ID (role, label, scope); revoke the old one after the overlap.

    Without --wait the command prints when and how to revoke the old key."""
    period = parse_duration(overlap)
    path = _keys_path(obj.client, agency)
    old = next((k for k in obj.client.all(path) if k["id"] == key_id), None)
    if old is None:
        raise UsageError(f"no key {key_id} here (try `mpp keys list`)")
    if old.get("revoked_at"):
        raise UsageError(f"key {key_id} is already revoked")
    body: dict = {"label": old.get("label")}
    if agency:
        body["role"] = old["role"]
        if old["role"] == "display":
            body["scope"] = old["scope"]
    new = obj.client.post(path, body)
    revoke_at = datetime.now(UTC) + period
    agency_flag = f" --agency {agency}" if agency else ""
    command = f"mpp keys revoke {key_id}{agency_flag}"
    if output == "json":
        payload = {"new": new, "old_id": key_id, "revoke_at": revoke_at.isoformat()}
        click.echo(json.dumps({**payload, "revoke_command": command}, indent=2))
    else:
        console.print(
            f"new {new['role']} key {new['id']} (shown once): {new['key']}", soft_wrap=True
        )
        console.print(f"both work until {revoke_at:%Y-%m-%d %H:%M} UTC; then: {command}")
    if wait:
        time.sleep(period.total_seconds())
        obj.client.delete(f"{path}/{key_id}")
        errors.print(f"revoked {key_id}")


# -- demo and load


@cli.command()
@click.option("-f", "--file", "path", default=str(EXAMPLE), show_default=True)
@click.option("--citizens", default=40, show_default=True, help="citizens in the morning")
@click.option("--seed", default=7, show_default=True)
@click.pass_obj
@run
def demo(obj, path, citizens, seed):
    """Seed the example mall and play a morning of citizens (tickets, service, payment, rating)."""
    from mpp_cli.demo import play

    data = _load(path)
    result = reconcile(obj.client, data, execute=True)
    console.print(f"seeded {path}: {sum(c.drift for c in result.changes)} change(s)")
    _print_keys(result)
    summary = play(obj.client, data, citizens=citizens, seed=seed, console=errors)
    emit("table", [summary], list(summary), "The morning")


@cli.command()
@click.option("--rate", type=float, required=True, help="requests a second (open loop)")
@click.option("--duration", type=float, required=True, help="seconds")
@click.option("--service", help="service code to take tickets for (default: the first one)")
@OUTPUT
@click.pass_obj
@run
def load(obj, rate, duration, service, output):
    """Take tickets at a fixed rate (bench's open loop: latency from the scheduled instant)."""
    from mpp_cli.loadrun import run_load

    result = run_load(obj.client, rate, duration, service, errors)  # progress on stderr
    row = result.as_dict()
    if output == "json":
        click.echo(json.dumps(row, indent=2))
        return
    columns = ["requests", "seconds", "rps", "p50_ms", "p99_ms", "non_2xx", "errors"]
    emit("table", [row], columns, f"POST /v1/tickets at {rate:g}/s for {duration:g} s")


if __name__ == "__main__":
    cli()
