"""The mall file is validated whole before anything is sent: every problem, with its line."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from mpp_cli import manifest
from mpp_cli.main import cli

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "mall.yaml"

BAD = """\
agencies:
  - code: dukcapil
    name: D
    services:
      - code: KTP-EL
        name: Cetak KTP-el
        fee_idr: -5
        sla_minutes: 30
        prefix: A1
        colour: red
      - code: KTP-EL
        name: Again
        fee_idr: 1.5
        sla_minutes: 1
        prefix: A
        booking: {slot_minutes: 1, capacity: 3}
    counters:
      - {name: Loket 1, services: [NOPE]}
    keys:
      - {role: boss, label: x}
      - {role: officer, label: Loket 1, scope: mall}
"""


def test_every_problem_is_reported_with_its_line():
    with pytest.raises(manifest.ManifestError) as caught:
        manifest.load(BAD, "bad.yaml")
    found = {(p.line, p.path) for p in caught.value.problems}
    assert found == {
        (2, "agencies[0].code"),
        (3, "agencies[0].name"),
        (7, "agencies[0].services[0].fee_idr"),
        (9, "agencies[0].services[0].prefix"),
        (10, "agencies[0].services[0].colour"),
        (11, "agencies[0].services[1]"),  # duplicate code
        (13, "agencies[0].services[1].fee_idr"),  # 1.5 is no whole number
        (16, "agencies[0].services[1].booking.slot_minutes"),
        (18, "agencies[0].counters[0].services[0]"),
        (20, "agencies[0].keys[0].role"),
        (21, "agencies[0].keys[1].scope"),
    }
    assert "bad.yaml:2: agencies[0].code: must match" in str(caught.value)


def test_a_syntax_error_names_its_line():
    with pytest.raises(manifest.ManifestError) as caught:
        manifest.load("agencies:\n  - code: DUKCAPIL\n    name: [oops\n", "x.yaml")
    assert caught.value.problems[0].path == "(syntax)"
    assert caught.value.problems[0].line >= 3


def test_the_example_mall_is_valid_and_realistic():
    data = manifest.load(EXAMPLE.read_text(), str(EXAMPLE))
    codes = {a["code"] for a in data["agencies"]}
    assert len(codes) >= 12
    assert {"DUKCAPIL", "IMIGRASI", "SAMSAT", "POLRI", "BPJS-KES", "BPJS-TK", "DJP", "BPN"} <= codes
    services = [s for a in data["agencies"] for s in a["services"]]
    assert any(s.get("booking") for s in services) and any(s["fee_idr"] > 0 for s in services)
    prefixes = [s["prefix"] for s in services]
    assert len(prefixes) == len(set(prefixes)), "one line (prefix) per service in the example"


def test_validate_command_exits_2_with_the_lines(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(BAD)
    result = CliRunner().invoke(cli, ["validate", "-f", str(path)])
    assert result.exit_code == 2
    assert f"{path}:18: agencies[0].counters[0].services[0]: no service 'NOPE'" in result.output
