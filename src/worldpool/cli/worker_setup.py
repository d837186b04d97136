"""What ``worldpool worker`` builds before it runs: the :class:`WorkerOptions` the command
gathers, the profile (detection + config file + flags), the handler table (``--handlers``
given by the operator, never names from messages, plus the built-in executors) and the
sync-handler children (``--sync-handlers process``)."""

from __future__ import annotations

import shutil
import socket
import tomllib
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

import orjson

from worldpool import geo
from worldpool.cli.sandbox_policy import policy_from_flags
from worldpool.errors import ConfigError
from worldpool.models import WorkerProfile
from worldpool.worker.handlers import HandlerTable, load_handlers
from worldpool.worker.processes import SyncProcesses

__all__ = [
    "SyncMode",
    "WorkerOptions",
    "build_profile",
    "collect_handlers",
    "sandbox_provider_name",
    "sync_processes",
]


class SyncMode(str, Enum):
    THREAD = "thread"
    PROCESS = "process"


@dataclass
class WorkerOptions:
    worker_id: str | None = None
    capabilities: list[str] = field(default_factory=list)
    region: str | None = None
    cost_per_hour: float | None = None
    max_concurrency: int | None = None
    handler_specs: list[str] = field(default_factory=list)
    profile_file: Path | None = None
    labels: dict[str, str] = field(default_factory=dict)
    builtin: bool = True
    unsafe_local_shell: bool = False
    sandbox: str | None = None
    """The shell sandbox provider by registered name; None: bubblewrap when ``bwrap`` is
    installed (``local`` with ``unsafe_local_shell``), else no shell executors."""
    sandbox_limits: dict[str, int | None] = field(default_factory=dict)
    """``--sandbox-max-*``: the most any task's sandbox limits may have (None: default)"""
    browser: bool = False
    workspace_cache: Path = field(
        default_factory=lambda: Path.home() / ".cache" / "worldpool" / "workspaces"
    )
    llm_url: str | None = None
    llm_model: str | None = None
    verify_claims: bool = True
    celery_app: str | None = None
    """``module:app`` of a Celery app: its tasks become handlers run on its fleet."""
    celery_queue: str | None = None
    sync_handlers: SyncMode = field(default_factory=lambda: SyncMode.THREAD)
    """Where the sync handlers of ``--handlers`` run: threads, or child processes that a
    stop can kill (:mod:`worldpool.worker.processes`)."""
    cancel_grace_s: float = 2.0
    """In process mode: how long a stopped handler's process gets before it is killed."""


def _profile_overrides(options: WorkerOptions) -> dict[str, Any]:
    data: dict[str, Any] = {}
    if options.profile_file is not None:
        path = options.profile_file
        try:
            raw = path.read_bytes()
            data = tomllib.loads(raw.decode()) if path.suffix == ".toml" else orjson.loads(raw)
        except (
            OSError,
            UnicodeDecodeError,
            tomllib.TOMLDecodeError,
            orjson.JSONDecodeError,
        ) as exc:
            raise ConfigError(f"{path}: cannot read the profile: {exc}") from None
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: a profile is one table/object")
    if "worker_id" in data:  # the seed's spelling
        data.setdefault("id", data.pop("worker_id"))
    if options.worker_id:
        data["id"] = options.worker_id
    if options.capabilities:
        data["capabilities"] = options.capabilities
    if options.cost_per_hour is not None:
        data["cost_per_hour"] = options.cost_per_hour
    if options.max_concurrency is not None:
        data["max_concurrency"] = options.max_concurrency
    if options.labels:
        data["labels"] = {**data.get("labels", {}), **options.labels}
    place = data.get("location")
    if isinstance(place, str) and not options.region:  # "tokyo", or the seed's "Tokyo, Japan"
        data["location"] = geo.place_for(place).model_dump()
        place = data["location"]
    region = options.region or (place or {}).get("region") or data.pop("region", None)
    if region is None:
        raise ConfigError(
            "give the worker a region: --region us-east-1 (or a city such as "
            "'tokyo'; 'on-prem' for your own data centre)"
        )
    if options.region or not isinstance(place, dict) or place.get("region") != region:
        data["location"] = geo.location_for(region).model_dump()
    data.pop("handlers", None)  # what it runs is what it has: set from the handler table
    data.setdefault("id", socket.gethostname().split(".")[0] or "worker")
    return data


def build_profile(options: WorkerOptions, handlers: HandlerTable) -> WorkerProfile:
    """Detected hardware merged with the profile file and flags (those win)."""
    from worldpool.worker import hardware

    data = _profile_overrides(options)
    if sandbox_provider_name(options) == "locale2b":
        _locale2b_capacity(data)
    return hardware.build_profile(data, hardware.detect_hardware(), handlers=handlers.names())


def _locale2b_capacity(data: dict[str, Any]) -> None:
    """A locale2b worker's VMs are its capacity: ``virtualization`` from the service's
    ``max_sandboxes`` (unless the profile says), and as many task slots (unless set)."""
    from worldpool.executors.sandbox.locale2b import Locale2bProvider

    groups = data.setdefault("hardware_capabilities", {})
    claimed = groups.get("virtualization") or (data.get("hardware") or {}).get("virtualization")
    vms = claimed.get("concurrent_vms") if isinstance(claimed, dict) else None
    if vms is None:
        try:
            provider = Locale2bProvider()
        except ConfigError:
            return  # no service configured: the claims check says so
        try:
            vms = provider.concurrent_vms
        finally:
            provider.close()
        if vms is None:
            return
        groups["virtualization"] = {"platform": "firecracker", "concurrent_vms": vms}
    data.setdefault("max_concurrency", vms)


def sandbox_provider_name(options: WorkerOptions) -> str | None:
    """The sandbox provider the built-in shell executors use (None: no shell executors)."""
    if options.sandbox is not None:
        return options.sandbox
    if options.unsafe_local_shell:
        return "local"
    return "bubblewrap" if shutil.which("bwrap") else None


def collect_handlers(options: WorkerOptions) -> HandlerTable:
    table = HandlerTable()
    if options.sandbox is not None:  # a typo is reported even with --no-builtin
        from worldpool.executors.registry import SANDBOX_PROVIDERS

        SANDBOX_PROVIDERS.check(options.sandbox)
    if options.builtin:
        from worldpool.executors import builtin_handlers, make_provider

        sandbox = sandbox_provider_name(options)
        provider = (
            make_provider(
                sandbox,
                unsafe_local_shell=options.unsafe_local_shell,
                policy=policy_from_flags(**options.sandbox_limits),
            )
            if sandbox is not None
            else None
        )
        llm = {
            "base_url": options.llm_url,
            **({"model": options.llm_model} if options.llm_model else {}),
        }
        from worldpool.executors.workspace import WorkspaceCache

        table.update(
            builtin_handlers(
                shell_provider=provider,
                workspace_cache=WorkspaceCache(options.workspace_cache),
                browser={} if options.browser else None,
                llm=llm if options.llm_url else None,
            )
        )
    for spec in options.handler_specs:
        table.update(load_handlers(spec))
    if options.celery_app:
        from worldpool.bridges.celery.cli import celery_handlers

        table.update(celery_handlers(options.celery_app, options.celery_queue, options.labels))
    if not len(table):
        raise ConfigError(
            "this worker has no handlers: pass --handlers module:HANDLERS or "
            "keep the built-in executors (--builtin)"
        )
    return table


def sync_processes(options: WorkerOptions) -> SyncProcesses | None:
    """What ``--sync-handlers process`` asks for (None: threads)."""
    if options.sync_handlers is SyncMode.THREAD:
        return None
    if not options.handler_specs:
        raise ConfigError(
            "--sync-handlers process runs the sync handlers of --handlers in child "
            "processes, and this worker has none: add --handlers module:HANDLERS"
        )
    return SyncProcesses(tuple(options.handler_specs), cancel_grace_s=options.cancel_grace_s)
