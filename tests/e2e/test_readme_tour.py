"""The README's curl tour runs exactly as written against a freshly started mall."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
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


@pytest.mark.skipif(not (shutil.which("curl") and shutil.which("jq")), reason="needs curl and jq")
def test_readme_curl_tour_works_as_written(mall_factory):
    mall = mall_factory("sqlite")
    env = {**os.environ, "MALL": mall.url, "MALL_ADMIN_KEY": MALL_ADMIN_KEY}
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", tour_script()],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert '"number": "A-001"' in out
    assert '"status": "paid"' in out
    assert '"grade": "A"' in out and '"count": 1' in out
