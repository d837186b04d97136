"""The sample project's scratch copies, and what runs in them: never on the host.

* :func:`workspace` is a fresh copy of the sample project (the fix applied when the step
  has one), removed when the step is done;
* :func:`apply_patch` really applies a diff, with ``git apply`` inside the bubblewrap
  sandbox (a patch comes from a model: never applied on the host);
* :func:`run_pytest` runs the sample project's tests for real, in bubblewrap;
* without bubblewrap both fail (retryable, so another worker can take the step) naming
  the package to install, and :func:`missing_for` names what a handler needs that this
  machine lacks, so the scenario can refuse to start a worker that cannot back its
  handlers and say so up front.
"""

from __future__ import annotations

import contextlib
import importlib.util
import re
import shutil
import sys
import tempfile
from collections.abc import Iterator
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

from worldpool.errors import HandlerError
from worldpool.executors.sandbox.base import SandboxProvider, ShellRequest
from worldpool.worker.handlers import TaskContext

# Package data, not a package: read through importlib.resources so an installed wheel has it.
PROJECT = resources.files("worldpool.demo") / "project"
_NOT_COPIED = frozenset({"__pycache__", ".pytest_cache"})
PATCH_FILE = ".worldpool-patch.diff"

# --------------------------------------------------------------------------- needs

BUBBLEWRAP = "bubblewrap (bwrap): sudo apt-get install bubblewrap"
GIT = "git: sudo apt-get install git"
CHROMIUM = "chromium (/usr/bin/chromium): sudo apt-get install chromium"
PYTEST = "pytest: pip install 'worldpool[demo]'"
PLAYWRIGHT = "playwright: pip install 'worldpool[browser]' (never 'playwright install')"


def missing_for(handler: str) -> list[str]:
    """What ``handler`` needs that this machine lacks, each with how to install it."""
    missing: list[str] = []
    if handler in {"run_tests", "fix", "browser_check"}:
        if shutil.which("git") is None:
            missing.append(GIT)
        if shutil.which("bwrap") is None:  # tests run, and patches are applied, in it
            missing.append(BUBBLEWRAP)
    if handler == "run_tests" and importlib.util.find_spec("pytest") is None:
        missing.append(PYTEST)
    if handler == "browser_check":
        from worldpool.executors.browser import BrowserConfig

        if BrowserConfig().missing_tools():  # the demo's browser is headless: Chromium only
            missing.append(CHROMIUM)
        if importlib.util.find_spec("playwright") is None:
            missing.append(PLAYWRIGHT)
    return missing


# --------------------------------------------------------------------------- workspace


@contextlib.contextmanager
def workspace(ctx: TaskContext) -> Iterator[Path]:
    """A fresh copy of the sample project, with the fix applied when the step has it;
    removed on the way out (also when applying the fix failed)."""
    root = Path(tempfile.mkdtemp(prefix=f"wp-{ctx.step or 'step'}-"))
    try:
        copy_tree(PROJECT, root)
        patch = next((n for n in ctx.input_data if n.endswith("patch.diff")), None)
        if patch:
            apply_patch(root, ctx.read(patch))
            ctx.log.info("applied %s", patch)
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


def copy_tree(source: Traversable, dest: Path) -> None:
    """Copy a resource directory (a folder or inside a zip) to ``dest``, caches left out."""
    for entry in source.iterdir():
        if entry.name in _NOT_COPIED:
            continue
        if entry.is_dir():
            (dest / entry.name).mkdir()
            copy_tree(entry, dest / entry.name)
        else:
            (dest / entry.name).write_bytes(entry.read_bytes())


# --------------------------------------------------------------------------- in the sandbox


def _sandbox() -> SandboxProvider:
    """The demo's bubblewrap sandbox (the worker's Python visible read-only, for pytest)."""
    from worldpool.executors.sandbox.bubblewrap import BubblewrapProvider

    return BubblewrapProvider(ro_paths=sorted({Path(sys.prefix), Path(sys.base_prefix)}))


def apply_patch(root: Path, diff: bytes) -> str:
    """``git apply`` the diff to ``root`` inside the sandbox; the sandbox's id."""
    missing = [
        need for need, tool in ((GIT, "git"), (BUBBLEWRAP, "bwrap")) if not shutil.which(tool)
    ]
    if missing:  # never on the host: fail where another worker can apply it
        raise HandlerError(
            f"this worker cannot apply the patch in a sandbox: missing {'; '.join(missing)}",
            retryable=True,
        )
    (root / PATCH_FILE).write_bytes(diff)
    try:
        outcome = _sandbox().run(
            ShellRequest(
                command=f"git apply --whitespace=nowarn {PATCH_FILE}; rc=$?; "
                f'rm -f {PATCH_FILE}; exit "$rc"',
                workspace=root,
                timeout_s=30,
            )
        )
    finally:
        (root / PATCH_FILE).unlink(missing_ok=True)
    if not outcome.ok:
        why = outcome.stderr.strip() or f"exit code {outcome.exit_code}"
        raise HandlerError(f"patch does not apply: {why}", retryable=False)
    return outcome.sandbox_id


def run_pytest(ctx: TaskContext, root: Path, tests: list[str]) -> dict[str, Any]:
    """Run ``tests`` of the project at ``root`` in the sandbox; its output is stored as
    ``test_output.txt`` and summed up in the result."""
    if importlib.util.find_spec("pytest") is None:  # a runtime need only of the demo
        raise HandlerError(
            "the demo runs the sample project's tests with pytest, which is not installed: "
            "pip install 'worldpool[demo]'",
            retryable=False,
        )
    argv = [sys.executable, "-m", "pytest", "-q", "--no-header", "-p", "no:cacheprovider", *tests]
    env = {"PYTHONPATH": ".", "PYTHONDONTWRITEBYTECODE": "1"}
    if shutil.which("bwrap") is None:  # never unsandboxed: fail where another worker can run it
        raise HandlerError(
            f"this worker cannot run the tests in a sandbox: missing {BUBBLEWRAP}", retryable=True
        )
    outcome = _sandbox().run(
        ShellRequest(command=argv, workspace=root, env=env, timeout_s=120), ctx.cancelled
    )
    ctx.set_meta("sandbox_id", outcome.sandbox_id)
    out = outcome.stdout + outcome.stderr
    ctx.store("test_output.txt", out, "text/plain")
    summary = next(
        (line for line in reversed(out.splitlines()) if re.search(r"\d+ (passed|failed)", line)), ""
    )
    failed = int(m.group(1)) if (m := re.search(r"(\d+) failed", summary)) else 0
    passed = int(m.group(1)) if (m := re.search(r"(\d+) passed", summary)) else 0
    return {
        "exit_code": outcome.exit_code,
        "passed": passed,
        "failed": failed,
        "failing_tests": failing_tests(out),
        "sandbox": "bubblewrap",
    }


def failing_tests(pytest_output: str) -> list[str]:
    """The ids pytest's summary names as failed."""
    return re.findall(r"^FAILED (\S+)", pytest_output, re.MULTILINE)
