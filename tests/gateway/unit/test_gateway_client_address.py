"""The client address behind trusted proxies, and the in-process limiter's windows."""

from __future__ import annotations

import pytest

from mpp_gateway.ratelimit import Limiter, LocalWindows, client_address, parse_networks

TRUSTED = parse_networks("10.0.0.0/8, 192.168.1.7, 2001:db8::/32")


@pytest.mark.parametrize(
    ("peer", "forwarded", "expected"),
    [
        ("203.0.113.1", None, "203.0.113.1"),
        ("203.0.113.1", "198.51.100.2", "203.0.113.1"),  # untrusted peer: header ignored
        ("10.0.0.5", None, "10.0.0.5"),
        ("10.0.0.5", "198.51.100.2", "198.51.100.2"),
        ("10.0.0.5", "6.6.6.6, 198.51.100.2", "198.51.100.2"),  # the client's own left part
        ("10.0.0.5", "198.51.100.2, 10.9.9.9, 192.168.1.7", "198.51.100.2"),  # proxy chain
        ("10.0.0.5", "not-an-ip, 198.51.100.2", "198.51.100.2"),
        ("10.0.0.5", "not-an-ip, 10.1.1.1", "10.1.1.1"),  # garbage: the last trusted hop
        ("10.0.0.5", "10.1.1.1, 10.2.2.2", "10.1.1.1"),  # all trusted: the left-most
        ("10.0.0.5", " 2001:db8::1 , 2001:db9::7 ", "2001:db9::7"),
        ("2001:db8::5", "198.51.100.2", "198.51.100.2"),
    ],
)
def test_the_client_is_the_right_most_untrusted_forwarded_address(peer, forwarded, expected):
    assert client_address(peer, forwarded, TRUSTED) == expected


def test_without_trusted_proxies_the_peer_is_the_client():
    assert client_address("10.0.0.5", "198.51.100.2", ()) == "10.0.0.5"
    assert parse_networks("") == ()
    with pytest.raises(ValueError, match="TRUSTED_PROXIES: 'nonsense'"):
        parse_networks("10.0.0.0/8, nonsense")


def test_local_windows_count_per_bucket_and_stay_bounded():
    windows = LocalWindows(maxsize=3)
    assert [windows.hit("a")[0] for _ in range(3)] == [1, 2, 3]
    assert windows.peek("a")[0] == 3 and windows.peek("b")[0] == 0
    assert 1 <= windows.hit("b")[1] <= 60
    for name in "cdefg":
        windows.hit(name)
    assert len(windows._counts) == 3


def test_a_limiter_without_redis_still_limits():
    limiter = Limiter(None, "unit")
    assert [limiter.hit("k", 2) for _ in range(2)] == [None, None]
    assert 1 <= limiter.hit("k", 2) <= 60
    assert limiter.over("k", 2) is not None and limiter.over("other", 2) is None
    assert limiter.hit("k", 0) is None  # a limit of 0 turns the limit off
