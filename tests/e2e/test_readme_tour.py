"""The README's curl tour runs exactly as written against a freshly started mall."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from tests.support.mall import MALL_ADMIN_KEY

pytestmark = pytest.mark.e2e

README = Path(__file__).resolve().parents[2] / "README.md"


def tour_script() -> str:
    text = README.read_text()
    block = re.search(r"<!-- tour:start -->\s*```bash\n(.*?)```\s*<!-- tour:end -->", text, re.S)
    assert block, "README must keep its tour between the tour markers"
    return block.group(1)


def run_tour(mall, timeout: float = 120, **env) -> subprocess.CompletedProcess:
    env = {**os.environ, "MALL": mall.url, "MALL_ADMIN_KEY": MALL_ADMIN_KEY, **env}
    return subprocess.run(
        ["bash", "-euo", "pipefail", "-c", tour_script()],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


needs_tools = pytest.mark.skipif(
    not (shutil.which("curl") and shutil.which("jq")), reason="needs curl and jq"
)


@needs_tools
def test_readme_curl_tour_works_as_written_and_again_on_the_same_mall(mall_factory):
    mall = mall_factory("sqlite")
    result = run_tour(mall)
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert '"number": "A-001"' in out
    assert '"status": "paid"' in out
    assert '"grade": "A"' in out and '"count": 1' in out
    # a newcomer runs it again: the agency and its service exist (the first run's 409
    # AGENCY_EXISTS was hidden by curl -sf, the ids came back empty and step 5 waited forever)
    again = run_tour(mall)
    assert again.returncode == 0, again.stdout + again.stderr
    assert '"number": "A-002"' in again.stdout
    assert '"status": "paid"' in again.stdout
    assert '"count": 2' in again.stdout


@needs_tools
def test_every_wait_of_the_tour_gives_up_with_a_message(mall_factory):
    mall = mall_factory("sqlite")
    payment = next(p for p in mall.processes if p.name == "payment")
    payment.stop()  # no invoice will ever come
    began = time.monotonic()
    result = run_tour(mall, timeout=90, WAIT="3")  # the tour's own setting; 30 s as written
    assert result.returncode != 0
    assert "no invoice after 3 s" in result.stderr
    assert time.monotonic() - began < 60
