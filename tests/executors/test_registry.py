"""The sandbox provider registry: built-ins resolve by name, a duplicate name is refused,
an unknown name gets a message listing the known ones, a factory must build what its name
says."""

from __future__ import annotations

import shutil
import threading

import pytest

from worldpool.errors import ConfigError
from worldpool.executors import SANDBOX_PROVIDERS, make_provider, register_sandbox_provider
from worldpool.executors.registry import (
    BUILTIN_SANDBOX_PROVIDERS,
    SandboxOptions,
    SandboxRegistry,
)
from worldpool.executors.sandbox.base import SandboxProvider, ShellRequest, ShellResult
from worldpool.executors.sandbox.bubblewrap import BubblewrapProvider
from worldpool.executors.sandbox.local import LocalProvider
from worldpool.executors.sandbox.locale2b import ENV_URL, Locale2bProvider


class Recorder(SandboxProvider):
    name = "recorder"

    def __init__(self, options: SandboxOptions) -> None:
        self.options = options

    def run(self, request: ShellRequest, cancelled: threading.Event | None = None) -> ShellResult:
        raise NotImplementedError


@pytest.fixture
def registry() -> SandboxRegistry:
    return SandboxRegistry()


def test_builtins_are_registered() -> None:
    assert BUILTIN_SANDBOX_PROVIDERS == ("bubblewrap", "locale2b", "local")
    assert all(name in SANDBOX_PROVIDERS for name in BUILTIN_SANDBOX_PROVIDERS)


@pytest.mark.skipif(shutil.which("bwrap") is None, reason="needs bubblewrap")
def test_bubblewrap_resolves_with_its_options() -> None:
    provider = make_provider("bubblewrap", allow_network=True)
    assert isinstance(provider, BubblewrapProvider) and provider.allow_network
    assert isinstance(make_provider(), BubblewrapProvider)  # the default


def test_local_resolves_and_carries_the_unsafe_flag() -> None:
    provider = make_provider("local", unsafe_local_shell=True)
    assert isinstance(provider, LocalProvider) and provider.allow and not provider.isolated
    refusing = make_provider("local")
    assert isinstance(refusing, LocalProvider) and not refusing.allow


def test_locale2b_resolves_with_a_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV_URL, raising=False)
    provider = make_provider("locale2b", locale2b_url="http://127.0.0.1:9/")
    try:
        assert isinstance(provider, Locale2bProvider)
    finally:
        provider.close()
    with pytest.raises(ConfigError, match=ENV_URL):
        make_provider("locale2b")


def test_unknown_name_lists_the_known_ones() -> None:
    with pytest.raises(ConfigError) as info:
        make_provider("bubblewarp")
    message = str(info.value)
    assert "unknown sandbox provider 'bubblewarp'" in message
    assert "Did you mean 'bubblewrap'" in message
    assert "bubblewrap, local, locale2b" in message


def test_duplicate_name_is_refused_unless_replaced(registry: SandboxRegistry) -> None:
    registry.register("recorder", Recorder)
    with pytest.raises(ConfigError, match="already registered"):
        registry.register("recorder", Recorder)
    registry.register("recorder", Recorder, replace=True)
    assert registry.names() == ("recorder",)
    with pytest.raises(ConfigError, match="already registered"):
        register_sandbox_provider("local", Recorder)


def test_registered_provider_gets_the_options(registry: SandboxRegistry) -> None:
    registry.register("recorder", Recorder)
    provider = registry.create("recorder", SandboxOptions(allow_network=True))
    assert isinstance(provider, Recorder) and provider.options.allow_network
    registry.unregister("recorder")
    assert "recorder" not in registry
    with pytest.raises(ConfigError, match="no sandbox provider named"):
        registry.unregister("recorder")


def test_bad_names_and_misnamed_providers_are_refused(registry: SandboxRegistry) -> None:
    with pytest.raises(ConfigError, match="must be letters"):
        registry.register("no spaces", Recorder)
    registry.register("other", Recorder)
    with pytest.raises(ConfigError, match="must equal its registered name"):
        registry.create("other", SandboxOptions())
