"""A contract error crosses RPC as its own type: the chassis registers the types with nameko,
so the contracts themselves import no nameko."""

from __future__ import annotations

import pytest
from nameko.exceptions import RemoteError, deserialize, serialize

import mpp_chassis.messaging  # noqa: F401  (registers the contract errors with nameko)
from mpp_contracts.errors import REMOTE_ERRORS, MppError


@pytest.mark.parametrize("error_type", REMOTE_ERRORS, ids=lambda t: t.__name__)
def test_a_contract_error_arrives_as_itself(error_type):
    sent = error_type("CODE", "a message", {"field": ["wrong"]})

    received = deserialize(serialize(sent))

    assert type(received) is error_type
    assert (received.code, received.message, received.details) == (
        "CODE",
        "a message",
        {"field": ["wrong"]},
    )


def test_every_contract_error_is_registered():
    declared = {t for t in MppError.__subclasses__() if t.__module__ == "mpp_contracts.errors"}
    assert set(REMOTE_ERRORS) == declared


def test_an_unknown_error_stays_a_remote_error():
    assert isinstance(deserialize(serialize(KeyError("secret_column"))), RemoteError)
