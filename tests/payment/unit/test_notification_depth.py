"""A provider notification nested too deep is a 400 before any signature check, not a 500
(issue 15: Python's json raises RecursionError, not ValueError, on deep nesting)."""

from __future__ import annotations

import pytest

from mpp_contracts.errors import BadRequest
from mpp_payment.adapters.providers import _json_object


@pytest.mark.parametrize("deep", [100_000])
def test_a_deeply_nested_notification_is_malformed(deep):
    for body in (b"[" * deep + b"]" * deep, b'{"a":' * deep + b"1" + b"}" * deep):
        with pytest.raises(BadRequest) as caught:
            _json_object(body)
        assert caught.value.code == "MALFORMED_NOTIFICATION"
