"""docs/events.md names, for every event, the services that consume it: exactly the services'
event handlers (issue 18: it said rating consumed events it does not)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SERVICES = ("queue", "payment", "rating", "gateway")
HANDLER = re.compile(r'@(?:batch_event|event|broadcast)_handler\(\s*"(\w+)",\s*"(\w+)"')


def handled() -> set[tuple[str, str]]:
    """(event type, consuming service) from the handlers' decorators."""
    found = set()
    for service in SERVICES:
        for path in (ROOT / "services" / service).rglob("*.py"):
            for _source, event in HANDLER.findall(path.read_text()):
                found.add((event, service))
    return found


def documented() -> tuple[set[tuple[str, str]], set[str]]:
    text = (ROOT / "docs" / "events.md").read_text()
    table = text[text.index("| event | from | consumed by") :].split("\n\n")[0]
    pairs, events = set(), set()
    for line in table.splitlines()[2:]:
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        names = re.findall(r"`(\w+)`", cells[0])
        named = re.sub(r"\([^)]*\)", "", cells[2])  # "(ticket shows payment)" names no consumer
        consumers = set(re.findall(r"\b(queue|payment|rating|gateway)\b", named))
        events.update(names)
        pairs.update((event, service) for event in names for service in consumers)
    return pairs, events


def test_the_events_table_names_exactly_the_consumers_that_exist():
    pairs, events = documented()
    actual = handled()
    assert actual, "no handler found: the scan is broken"
    assert {event for event, _ in actual} <= events, "a handled event is missing from the table"
    assert pairs == actual


def test_the_relay_must_route_exactly_the_types_a_service_consumes():
    """``CONSUMED`` decides which types the outbox relay publishes ``mandatory`` (and parks when
    no queue takes them): a handled type missing from it would be dropped by the broker while
    its consumer is not deployed yet; an extra one would park forever."""
    from mpp_contracts.events import CONSUMED, EVENT_TYPES

    assert CONSUMED == {event for event, _ in handled()}
    assert CONSUMED <= set(EVENT_TYPES)
