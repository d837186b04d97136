"""Built-in executors: the handlers a worker runs without user code.

``builtin_handlers(...)`` builds the table: ``shell``, ``run_tests`` (when a sandbox
provider is given), ``apply_patch``, ``check_syntax``, plus ``browser`` and ``llm`` from
their modules when their optional dependencies are installed and configured.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from worldpool.errors import ConfigError
from worldpool.executors.code import apply_patch_handler, check_syntax_handler, run_tests_handler
from worldpool.executors.sandbox.base import SandboxProvider
from worldpool.executors.shell import shell_handler
from worldpool.executors.workspace import WorkspaceCache, snapshot_resolver
from worldpool.worker.handlers import HandlerTable

log = logging.getLogger(__name__)

__all__ = ["builtin_handlers", "make_provider"]


def make_provider(
    name: str = "bubblewrap",
    *,
    allow_network: bool = False,
    unsafe_local_shell: bool = False,
    ro_paths: list[Path] | None = None,
    locale2b_url: str | None = None,
) -> SandboxProvider:
    """A sandbox provider by name: ``bubblewrap``, ``locale2b`` or ``local``."""
    if name == "bubblewrap":
        from worldpool.executors.sandbox.bubblewrap import BubblewrapProvider

        return BubblewrapProvider(allow_network=allow_network, ro_paths=ro_paths)
    if name == "locale2b":
        from worldpool.executors.sandbox.locale2b import Locale2bProvider

        return Locale2bProvider(locale2b_url)
    if name == "local":
        from worldpool.executors.sandbox.local import LocalProvider

        return LocalProvider(allow=unsafe_local_shell)
    raise ConfigError(f"unknown sandbox provider {name!r}: use bubblewrap, locale2b or local")


def builtin_handlers(
    *,
    shell_provider: SandboxProvider | None = None,
    workspace_cache: WorkspaceCache | None = None,
    workspace_root: Path | None = None,
    browser: Mapping[str, Any] | None = None,
    llm: Mapping[str, Any] | None = None,
) -> HandlerTable:
    """The built-in handler table.

    Without ``shell_provider`` there is no ``shell`` / ``run_tests``. ``workspace_cache``
    lets steps take ``snapshot`` payloads. ``browser`` / ``llm`` are passed to those
    modules' ``handlers(config)``; None skips them (a missing optional dependency is
    logged and skipped too, a bad config raises).
    """
    resolver = snapshot_resolver(workspace_cache) if workspace_cache is not None else None
    table = HandlerTable(
        {
            "apply_patch": apply_patch_handler(workspace_root, resolver),
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
    for module, config in (("browser", browser), ("llm", llm)):
        if config is not None:
            extra = _optional_handlers(module, config)
            if extra:
                table.update(extra)
    return table


def _optional_handlers(module: str, config: Mapping[str, Any]) -> dict[str, Any] | None:
    """``worldpool.executors.<module>.handlers(config)``, imported only when asked for."""
    try:
        mod = importlib.import_module(f"worldpool.executors.{module}")
    except ImportError as exc:
        log.warning(
            "built-in %s executor unavailable (%s); install worldpool[%s]", module, exc, module
        )
        return None
    factory = getattr(mod, "handlers", None)
    if factory is None:
        return None
    result = factory(config)
    return dict(result)
