"""Where `mpp` finds the mall and its key: flags, then MALL_URL/MPP_KEY, then the profile file."""

from __future__ import annotations

import pytest

from mpp_cli.client import LOCAL_ADMIN_KEY, Settings, UsageError


@pytest.fixture
def profiles(tmp_path, monkeypatch):
    path = tmp_path / "profiles.yaml"
    path.write_text(
        "profiles:\n"
        "  default: {url: 'http://mall-a:8000/', key: key-a}\n"
        "  bogor: {url: 'https://mpp.bogor.example', key: key-b}\n"
    )
    monkeypatch.setenv("MPP_CONFIG", str(path))
    for name in ("MALL_URL", "MPP_KEY", "MPP_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    return path


def test_the_profile_file_then_the_environment_then_flags(profiles, monkeypatch):
    settings = Settings.resolve(None, None, None)
    assert (settings.url, settings.key) == ("http://mall-a:8000", "key-a")
    assert Settings.resolve(None, None, "bogor").key == "key-b"
    monkeypatch.setenv("MPP_PROFILE", "bogor")
    assert Settings.resolve(None, None, None).url == "https://mpp.bogor.example"
    monkeypatch.setenv("MALL_URL", "http://env:8000")
    monkeypatch.setenv("MPP_KEY", "env-key")
    settings = Settings.resolve(None, None, None)
    assert (settings.url, settings.key, settings.source) == (
        "http://env:8000",
        "env-key",
        "MPP_KEY",
    )
    settings = Settings.resolve("http://flag:1", "flag-key", None)
    assert (settings.url, settings.key) == ("http://flag:1", "flag-key")


def test_an_unknown_profile_is_an_error_and_no_file_means_the_local_mall(profiles, monkeypatch):
    with pytest.raises(UsageError, match="no profile 'nope'"):
        Settings.resolve(None, None, "nope")
    monkeypatch.setenv("MPP_CONFIG", str(profiles.parent / "absent.yaml"))
    settings = Settings.resolve(None, None, None)
    assert (settings.url, settings.key) == ("http://localhost:8000", LOCAL_ADMIN_KEY)
