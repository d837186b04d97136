"""Name → factory registry of the sandbox providers the ``shell`` and ``run_tests``
executors run commands in.

A factory takes the :class:`SandboxOptions` the worker was started with and returns a
provider whose ``name`` is the registered name. Registering a name twice is an error
unless ``replace=True``: a typo must not silently shadow a built-in. Built-ins:
``bubblewrap`` (the default), ``locale2b`` (Firecracker microVMs of a locale2b service)
and ``local`` (no isolation; refuses to run unless ``--unsafe-local-shell``). Each is
imported only when asked for.

    from worldpool.executors import register_sandbox_provider

    register_sandbox_provider("nsjail", lambda options: NsjailProvider(options.ro_paths))
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from worldpool.executors.sandbox.base import SandboxProvider
from worldpool.executors.sandbox.policy import DEFAULT_POLICY, SandboxPolicy
from worldpool.plugins import NamedRegistry


@dataclass(frozen=True)
class SandboxOptions:
    """What a worker says about its sandbox; each provider uses the parts it understands."""

    allow_network: bool = False
    unsafe_local_shell: bool = False
    ro_paths: list[Path] = field(default_factory=list)
    locale2b_url: str | None = None
    policy: SandboxPolicy = DEFAULT_POLICY
    """the most any task may have (memory, processes, files, workspace): not raisable"""


SandboxFactory = Callable[[SandboxOptions], SandboxProvider]


class SandboxRegistry(NamedRegistry[SandboxOptions, SandboxProvider]):
    """Sandbox provider factories by name; factories take the worker's sandbox options."""

    def __init__(self) -> None:
        super().__init__(
            "sandbox provider", noun="provider", register_with="register_sandbox_provider"
        )


SANDBOX_PROVIDERS = SandboxRegistry()


def register_sandbox_provider(name: str, factory: SandboxFactory, *, replace: bool = False) -> None:
    """Make a sandbox provider available to :func:`make_provider` (and ``--sandbox``)."""
    SANDBOX_PROVIDERS.register(name, factory, replace=replace)


def make_provider(
    name: str = "bubblewrap",
    *,
    allow_network: bool = False,
    unsafe_local_shell: bool = False,
    ro_paths: list[Path] | None = None,
    locale2b_url: str | None = None,
    policy: SandboxPolicy | None = None,
) -> SandboxProvider:
    """The registered sandbox provider ``name``, built with these options."""
    options = SandboxOptions(
        allow_network=allow_network,
        unsafe_local_shell=unsafe_local_shell,
        ro_paths=list(ro_paths or []),
        locale2b_url=locale2b_url,
        policy=policy or DEFAULT_POLICY,
    )
    return SANDBOX_PROVIDERS.create(name, options)


def _bubblewrap(options: SandboxOptions) -> SandboxProvider:
    from worldpool.executors.sandbox.bubblewrap import BubblewrapProvider

    return BubblewrapProvider(
        allow_network=options.allow_network, ro_paths=options.ro_paths, policy=options.policy
    )


def _locale2b(options: SandboxOptions) -> SandboxProvider:
    from worldpool.executors.sandbox.locale2b import Locale2bProvider

    return Locale2bProvider(options.locale2b_url)


def _local(options: SandboxOptions) -> SandboxProvider:
    from worldpool.executors.sandbox.local import LocalProvider

    return LocalProvider(allow=options.unsafe_local_shell, policy=options.policy)


register_sandbox_provider("bubblewrap", _bubblewrap)
register_sandbox_provider("locale2b", _locale2b)
register_sandbox_provider("local", _local)

BUILTIN_SANDBOX_PROVIDERS: tuple[str, ...] = SANDBOX_PROVIDERS.names()
