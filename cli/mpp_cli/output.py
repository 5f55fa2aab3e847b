"""How every ``mpp`` command prints: a rich table, or JSON with ``--output json``."""

from __future__ import annotations

import json
from typing import Any

import click
from rich.console import Console
from rich.table import Table

console = Console()
errors = Console(stderr=True)
OUTPUT = click.option(
    "--output", "-o", type=click.Choice(["table", "json"]), default="table", show_default=True
)


def emit(output: str, rows: Any, columns: list[str], title: str) -> None:
    if output == "json":
        click.echo(json.dumps(rows, indent=2, ensure_ascii=False, default=str))
        return
    table = Table(title=title)
    for column in columns:
        table.add_column(column, no_wrap=column == "id" or column.endswith("_id"))
    for row in rows:
        table.add_row(*[_cell(c, row.get(c)) for c in columns])
    console.print(table)


def _cell(column: str, value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str) and (column.endswith("_at") or column.endswith("_due")):
        return value[:19].replace("T", " ")  # ISO instants, to the second
    return str(value)
