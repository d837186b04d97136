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
* :func:`~worldpool.demo.workspace.missing_for` names what a handler needs that this
  machine lacks, so the scenario can refuse to start a worker that cannot back its
  handlers and say so up front (the scratch copies, the sandbox and the tests run in it
  are :mod:`.workspace`);
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
import os
import re
import socket
import sys
import time
from pathlib import Path
from typing import Any

from worldpool.demo.llm import ask, read_screenshot, with_call
from worldpool.demo.workspace import apply_patch, failing_tests, missing_for, run_pytest, workspace
from worldpool.errors import HandlerError
from worldpool.worker.handlers import Handler, TaskContext

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
    with workspace(ctx) as root:
        tests = [str(t) for t in ctx.payload.get("tests", ["tests"])]
        result = run_pytest(ctx, root, tests)
        ctx.store("login.py", (root / "auth" / "login.py").read_bytes(), "text/x-python")
        return result


def analyze(ctx: TaskContext) -> dict[str, Any]:
    """Understanding: read the failing test's trace and the code, name the root cause."""
    output = ctx.read_text("localization/test_output.txt")
    code = ctx.read_text("localization/login.py")
    failing = failing_tests(output)
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
    with workspace(ctx) as root:
        patch_sandbox = apply_patch(root, patch.encode())
        if error := _syntax_error(root):
            raise HandlerError(f"patched code does not parse: {error}", retryable=False)
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
    with workspace(ctx) as root:
        try:
            apply_patch(root, _diff_of(answer).encode())
        except HandlerError as exc:
            return "rule", f"did not apply: {str(exc).removeprefix('patch does not apply: ')}"
        if error := _syntax_error(root):
            return "rule", f"applied but does not parse: {error}"
        tests = run_pytest(ctx, root, ["tests"])
        if tests["exit_code"] != 0:
            return "rule", f"applied but {tests['failed']} test(s) failed with it"
        return "model", f"applied and all {tests['passed']} tests passed"


def _syntax_error(root: Path) -> SyntaxError | None:
    """Why the (patched) ``auth/login.py`` under ``root`` does not parse; None if it does."""
    try:
        ast.parse((root / "auth" / "login.py").read_text(), "auth/login.py")
    except SyntaxError as exc:
        return exc
    return None


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
    with workspace(ctx) as root:
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
