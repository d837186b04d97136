"""The demo's step handlers. They do real work, or fail saying what is missing.

* tests run for real, in bubblewrap; without it the step fails (retryable, so another
  worker can take it) naming the package to install: never unsandboxed;
* the patch is really applied, with ``git apply`` inside the bubblewrap sandbox (a patch
  comes from a model: never applied on the host), and its syntax checked;
* the browser check really logs in on the sample app's page in Chromium; without Chromium
  the step fails the same way, never "succeeds" without having run;
* the review approves only what was verified: tests run in the sandbox and passing, and a
  browser login that really happened; it reads the browser step's screenshot (local OCR)
  and quotes it;
* :func:`missing_for` names what a handler needs that this machine lacks, so the scenario
  can refuse to start a worker that cannot back its handlers and say so up front;
* LLM steps call an OpenAI-compatible endpoint (:mod:`.llm`): the local model the scenario
  starts (the ``local-llm`` extra) or ``WORLDPOOL_DEMO_LLM_URL``; their results show the
  model's answer, its tokens, speed and per-token cost. Without one they use an **offline
  rule**, labelled as such in the step's result. Nothing pretends to be a model;
* the fix step applies the model's patch only when it applies and the tests pass with it,
  else the rule's, and says which and why.
"""

from __future__ import annotations

import ast
import asyncio
import importlib.util
import os
import re
import shutil
import socket
import sys
import tempfile
import time
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

from worldpool.demo.llm import ask, read_screenshot, with_call
from worldpool.errors import HandlerError
from worldpool.executors.sandbox.base import SandboxProvider
from worldpool.worker.handlers import Handler, TaskContext

# Package data, not a package: read through importlib.resources so an installed wheel has it.
PROJECT = resources.files("worldpool.demo") / "project"
_NOT_COPIED = frozenset({"__pycache__", ".pytest_cache"})
PATCH = """\
--- a/auth/login.py
+++ b/auth/login.py
@@ -29,7 +29,7 @@
 
     def login(self, email: str, password: str) -> User | None:
         \"\"\"The user if the e-mail and password match, else None.\"\"\"
-        user = self._users.get(email)
+        user = self._users.get(email.strip().lower())
         if user is None:
             return None
         if not hmac.compare_digest(user.password_hash, hash_password(password, user.salt)):
"""


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


def _workspace(ctx: TaskContext) -> Path:
    """A fresh copy of the sample project, with the fix applied when the step has it."""
    root = Path(tempfile.mkdtemp(prefix=f"wp-{ctx.step or 'step'}-"))
    _copy_tree(PROJECT, root)
    patch = next((n for n in ctx.input_data if n.endswith("patch.diff")), None)
    if patch:
        _apply_patch(root, ctx.read(patch))
        ctx.log.info("applied %s", patch)
    return root


def _copy_tree(source: Traversable, dest: Path) -> None:
    """Copy a resource directory (a folder or inside a zip) to ``dest``, caches left out."""
    for entry in source.iterdir():
        if entry.name in _NOT_COPIED:
            continue
        if entry.is_dir():
            (dest / entry.name).mkdir()
            _copy_tree(entry, dest / entry.name)
        else:
            (dest / entry.name).write_bytes(entry.read_bytes())


PATCH_FILE = ".worldpool-patch.diff"


def _sandbox() -> SandboxProvider:
    """The demo's bubblewrap sandbox (the worker's Python visible read-only, for pytest)."""
    from worldpool.executors.sandbox.bubblewrap import BubblewrapProvider

    return BubblewrapProvider(ro_paths=sorted({Path(sys.prefix), Path(sys.base_prefix)}))


def _apply_patch(root: Path, diff: bytes) -> str:
    """``git apply`` the diff to ``root`` inside the sandbox; the sandbox's id."""
    missing = [
        need for need, tool in ((GIT, "git"), (BUBBLEWRAP, "bwrap")) if not shutil.which(tool)
    ]
    if missing:  # never on the host: fail where another worker can apply it
        raise HandlerError(
            f"this worker cannot apply the patch in a sandbox: missing {'; '.join(missing)}",
            retryable=True,
        )
    from worldpool.executors.sandbox.base import ShellRequest

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


def _run_pytest(ctx: TaskContext, root: Path, tests: list[str]) -> dict[str, Any]:
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
    from worldpool.executors.sandbox.base import ShellRequest

    outcome = _sandbox().run(
        ShellRequest(command=argv, workspace=root, env=env, timeout_s=120), ctx.cancelled
    )
    ctx.set_meta("sandbox_id", outcome.sandbox_id)
    code, out, sandbox = outcome.exit_code, outcome.stdout + outcome.stderr, "bubblewrap"
    ctx.store("test_output.txt", out, "text/plain")
    summary = next(
        (line for line in reversed(out.splitlines()) if re.search(r"\d+ (passed|failed)", line)), ""
    )
    failed = int(m.group(1)) if (m := re.search(r"(\d+) failed", summary)) else 0
    passed = int(m.group(1)) if (m := re.search(r"(\d+) passed", summary)) else 0
    failing = re.findall(r"^FAILED (\S+)", out, re.MULTILINE)
    return {
        "exit_code": code,
        "passed": passed,
        "failed": failed,
        "failing_tests": failing,
        "sandbox": sandbox,
    }


# --------------------------------------------------------------------------- steps


def plan(ctx: TaskContext) -> dict[str, Any]:
    """Planning: split the request into the workflow's steps."""
    request = str(ctx.payload.get("request", "Fix the bug"))
    steps = [
        "Localize the bug (read code, run tests)",
        "Understand the root cause",
        "Implement the fix",
        "Verify with tests and in the browser",
        "Review",
    ]
    text, engine, call = ask(
        ctx,
        f"Request: {request}. Write a numbered plan of at most five short steps.",
        max_tokens=64,
    )
    plan_md = f"# Plan for: {request}\n" + "\n".join(f"{i}. {s}" for i, s in enumerate(steps, 1))
    if text:
        plan_md += "\n\n## The model's plan\n" + text
    ctx.store("plan.md", plan_md, "text/markdown")
    return with_call({"engine": engine, "steps": steps}, call)


def run_tests(ctx: TaskContext) -> dict[str, Any]:
    """Localization / verification: run the sample project's tests for real."""
    root = _workspace(ctx)
    try:
        tests = [str(t) for t in ctx.payload.get("tests", ["tests"])]
        result = _run_pytest(ctx, root, tests)
        ctx.store("login.py", (root / "auth" / "login.py").read_bytes(), "text/x-python")
        return result
    finally:
        shutil.rmtree(root, ignore_errors=True)


def analyze(ctx: TaskContext) -> dict[str, Any]:
    """Understanding: read the failing test's trace and the code, name the root cause."""
    output = ctx.read_text("localization/test_output.txt")
    code = ctx.read_text("localization/login.py")
    failing = re.findall(r"^FAILED (\S+)", output, re.MULTILINE)
    lookup = next(
        (i for i, line in enumerate(code.splitlines(), 1) if "self._users.get(email)" in line), None
    )
    if not failing or lookup is None:
        raise HandlerError(
            "no failing test or no lookup line found: nothing to diagnose", retryable=False
        )
    diagnosis = (
        f"{failing[0]} fails: sign_up() stores the e-mail stripped and lower-cased, "
        f"but login() looks it up as typed (auth/login.py:{lookup})."
    )
    # The failure's lines and the function around the lookup: a short prompt is a fast one.
    trace = [ln for ln in output.splitlines() if ln.startswith(("E ", "FAILED", ">"))]
    around = code.splitlines()[max(0, lookup - 6) : lookup + 4]
    text, engine, call = ask(
        ctx,
        "A test fails:\n"
        + "\n".join(trace)[-600:]
        + "\nCode of auth/login.py:\n"
        + "\n".join(around)
        + "\nName the root cause in one sentence.",
        max_tokens=48,
    )
    ctx.store(
        "diagnosis.md",
        diagnosis + ("\n\nModel's analysis:\n" + text if text else ""),
        "text/markdown",
    )
    return with_call({"engine": engine, "diagnosis": diagnosis, "line": lookup}, call)


def fix(ctx: TaskContext) -> dict[str, Any]:
    """Fix: the model's patch when it applies and the tests pass with it, else the rule's.

    The chosen patch is applied to a scratch copy and its syntax checked; the result's
    ``patch_source`` says whose it is and, for the rule's, why the model's was not used."""
    diagnosis = ctx.read_text("understanding/diagnosis.md")
    proposal, engine, call = ask(
        ctx,
        diagnosis.split("\n\n")[0] + "\nWrite a unified diff for auth/login.py that "
        "fixes it. Answer with the diff only.",
        max_tokens=120,
    )
    source, note = (
        ("rule", "no model configured") if not proposal else _try_model_patch(ctx, proposal)
    )
    patch = _diff_of(proposal) if source == "model" else PATCH
    if source == "rule" and proposal:
        ctx.log.warning("the model's patch was not used (%s): using the offline rule's", note)
        engine += f"; patch from the offline rule (the model's patch {note})"
    root = _workspace(ctx)
    try:
        patch_sandbox = _apply_patch(root, patch.encode())
        code = (root / "auth" / "login.py").read_text()
        try:
            ast.parse(code, "auth/login.py")
        except SyntaxError as exc:
            raise HandlerError(f"patched code does not parse: {exc}", retryable=False) from None
    finally:
        shutil.rmtree(root, ignore_errors=True)
    ctx.store("patch.diff", patch, "text/x-diff")
    result = {
        "engine": engine,
        "patch_source": source,
        "patch_note": note,
        "files_changed": ["auth/login.py"],
        "syntax": "ok",
        "patch_applied_in": patch_sandbox,
    }
    return with_call(result, call)


def _diff_of(answer: str) -> str:
    """The diff inside a model's answer: the first fenced block when there is one."""
    fenced = re.search(r"```(?:diff|patch)?\n(.*?)```", answer, re.DOTALL)
    text = fenced.group(1) if fenced else answer
    return text if text.endswith("\n") else text + "\n"


def _try_model_patch(ctx: TaskContext, answer: str) -> tuple[str, str]:
    """("model", why) when the model's diff applies and the whole suite passes with it,
    else ("rule", why not)."""
    root = _workspace(ctx)
    try:
        try:
            _apply_patch(root, _diff_of(answer).encode())
        except HandlerError as exc:
            return "rule", f"did not apply: {str(exc).removeprefix('patch does not apply: ')}"
        try:
            ast.parse((root / "auth" / "login.py").read_text(), "auth/login.py")
        except SyntaxError as exc:
            return "rule", f"applied but does not parse: {exc}"
        tests = _run_pytest(ctx, root, ["tests"])
        if tests["exit_code"] != 0:
            return "rule", f"applied but {tests['failed']} test(s) failed with it"
        return "model", f"applied and all {tests['passed']} tests passed"
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def browser_check(ctx: TaskContext) -> dict[str, Any]:
    """Verification in a browser: log in on the patched app's page and take a screenshot."""
    from worldpool.executors.browser import BrowserConfig, run_browser

    config = BrowserConfig()
    missing = missing_for("browser_check")
    if missing:  # a step that did not run is a failure, retryable where the tools are
        raise HandlerError(
            "this worker cannot run the browser check: missing " + "; ".join(missing),
            retryable=True,
        )
    root = _workspace(ctx)
    port = _free_port()
    app = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "auth.app",
        str(port),
        cwd=root,
        env={**os.environ, "PYTHONPATH": str(root)},
    )
    try:
        await asyncio.to_thread(_wait_port, port)
        ctx.payload = {
            "actions": [
                {"action": "goto", "url": f"http://127.0.0.1:{port}/"},
                {"action": "fill", "selector": "#email", "value": " Alice@Example.com"},
                {"action": "fill", "selector": "#password", "value": "correct horse"},
                {"action": "click", "selector": "#submit"},
                {"action": "wait_for", "text": "Welcome"},
                {"action": "screenshot", "name": "login.png"},
            ]
        }
        result = await run_browser(ctx, config)
    finally:
        app.terminate()
        await app.wait()
        shutil.rmtree(root, ignore_errors=True)
    # run_browser returns only after "wait_for Welcome" passed: the login really happened.
    return {
        "ran": True,
        "logged_in": True,
        "title": result.get("title"),
        "url": result.get("final_url"),
        "screenshots": result.get("screenshots", []),
    }


def _wait_port(port: int, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise HandlerError(f"the sample app did not listen on port {port}")


def unverified(upstream: dict[str, Any]) -> list[str]:
    """What the verification did not establish (empty: the fix is verified)."""
    tests = upstream.get("verify_tests")
    browser = upstream.get("verify_browser")
    gaps = []
    if not isinstance(tests, dict):
        gaps.append("the tests did not run")
    else:
        if tests.get("sandbox") != "bubblewrap":
            gaps.append("the tests did not run in the sandbox")
        if tests.get("exit_code") != 0 or tests.get("failed", 1) != 0 or not tests.get("passed"):
            gaps.append(f"the tests did not pass ({tests.get('failed', '?')} failed)")
    if not isinstance(browser, dict) or not browser.get("ran") or not browser.get("logged_in"):
        gaps.append("the browser check did not run")
    return gaps


def review(ctx: TaskContext) -> dict[str, Any]:
    """Review: weigh the verification results and write the final report. Approves only
    verified work: passing tests run in the sandbox and a real browser login."""
    tests = ctx.upstream.get("verify_tests") or {}
    browser = ctx.upstream.get("verify_browser") or {}
    gaps = unverified(dict(ctx.upstream))
    ok = not gaps
    lines = [
        "# Review",
        f"- tests: {tests.get('passed', 0)} passed, {tests.get('failed', 0)} "
        f"failed ({tests.get('sandbox', 'no')} sandbox)"
        if tests
        else "- tests: not run",
    ]
    if browser.get("ran"):
        lines.append(f"- browser: logged in, page title {browser.get('title')!r}")
    else:
        lines.append(f"- browser: not run ({browser.get('reason', 'no result')})")
    seen = read_screenshot(ctx)
    lines.append(f"- screenshot, read by {seen['engine']}: {seen['quote']!r}")
    lines.append("- verdict: " + ("ship it" if ok else "not approved: " + "; ".join(gaps)))
    text, engine, call = ask(
        ctx, "Review this verification in two sentences:\n" + "\n".join(lines), max_tokens=48
    )
    if text:
        lines += ["", "Model's review:", text]
    ctx.store("report.md", "\n".join(lines), "text/markdown")
    return with_call(
        {"engine": engine, "approved": ok, "unverified": gaps, "screenshot_read": seen}, call
    )


HANDLERS: dict[str, Handler] = {
    "plan": plan,
    "run_tests": run_tests,
    "analyze": analyze,
    "fix": fix,
    "browser_check": browser_check,
    "review": review,
}
