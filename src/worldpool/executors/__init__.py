"""Built-in executors: the handlers a worker runs without user code.

``builtin_handlers(...)`` builds the table: ``shell``, ``run_tests`` (when a sandbox
provider is given), ``apply_patch``, ``check_syntax``, plus ``browser`` and ``llm`` from
their modules (a fixed table, :data:`OPTIONAL_EXECUTORS`) when their optional
dependencies are installed and configured. Sandbox providers come by name from the
registry in :mod:`.registry` (``make_provider``, ``register_sandbox_provider``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from worldpool.executors.code import apply_patch_handler, check_syntax_handler, run_tests_handler
from worldpool.executors.registry import (
    SANDBOX_PROVIDERS,
    SandboxOptions,
    make_provider,
    register_sandbox_provider,
)
from worldpool.executors.sandbox.base import SandboxProvider
from worldpool.executors.sandbox.policy import SandboxPolicy
from worldpool.executors.shell import shell_handler
from worldpool.executors.workspace import WorkspaceCache, snapshot_resolver
from worldpool.worker.handlers import Handler, HandlerTable

log = logging.getLogger(__name__)

__all__ = [
    "OPTIONAL_EXECUTORS",
    "SANDBOX_PROVIDERS",
    "SandboxOptions",
    "SandboxPolicy",
    "builtin_handlers",
    "make_provider",
    "register_sandbox_provider",
]

HandlerGroup = Callable[[Mapping[str, Any]], Mapping[str, Handler]]
"""A module's ``handlers(config)``: its handlers, configured."""


def _browser_handlers() -> HandlerGroup:
    from worldpool.executors.browser import handlers

    return handlers


def _llm_handlers() -> HandlerGroup:
    from worldpool.executors.llm import handlers

    return handlers


def _vision_handlers() -> HandlerGroup:
    from worldpool.executors.vision import handlers

    return handlers


OPTIONAL_EXECUTORS: Mapping[str, Callable[[], HandlerGroup]] = {
    "browser": _browser_handlers,
    "llm": _llm_handlers,
    "vision": _vision_handlers,
}
"""The executors built only when configured, by name: each entry imports its module (and
so its optional dependencies) only when called."""


def builtin_handlers(
    *,
    shell_provider: SandboxProvider | None = None,
    workspace_cache: WorkspaceCache | None = None,
    workspace_root: Path | None = None,
    browser: Mapping[str, Any] | None = None,
    llm: Mapping[str, Any] | None = None,
    vision: Mapping[str, Any] | None = None,
) -> HandlerTable:
    """The built-in handler table.

    Without ``shell_provider`` there is no ``shell`` / ``run_tests``. ``workspace_cache``
    lets steps take ``snapshot`` payloads. ``browser`` / ``llm`` / ``vision`` are passed to those
    modules' ``handlers(config)``; None skips them (a missing optional dependency is
    logged and skipped too, a bad config raises).
    """
    resolver = snapshot_resolver(workspace_cache) if workspace_cache is not None else None
    table = HandlerTable(
        {
            "apply_patch": apply_patch_handler(workspace_root, resolver, shell_provider),
            "check_syntax": check_syntax_handler(workspace_root, resolver),
        }
    )
    if shell_provider is not None:
        table.add(
            "shell",
            shell_handler(
                shell_provider, workspace_root=workspace_root, snapshot_resolver=resolver
            ),
        )
        table.add("run_tests", run_tests_handler(shell_provider, workspace_root, resolver))
    for name, config in (("browser", browser), ("llm", llm), ("vision", vision)):
        if config is not None:
            extra = _optional_handlers(name, config)
            if extra:
                table.update(extra)
    return table


def _optional_handlers(name: str, config: Mapping[str, Any]) -> Mapping[str, Handler] | None:
    """The ``name`` executor's handlers, or None (logged) when its dependencies are missing."""
    try:
        make = OPTIONAL_EXECUTORS[name]()
    except ImportError as exc:
        log.warning("built-in %s executor unavailable (%s); install worldpool[%s]", name, exc, name)
        return None
    return make(config)
