"""Typed handlers (``@worldpool.handler``): declared requirements, input validated at
submit and on the worker, output models back to the caller, workflow steps naming them;
the same code embedded and against real serve and worker processes."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.client.deployment import deployed
from tests.client.typed_handlers import HANDLERS, PlanInput, PlanOutput, liar, plan, review
from tests.e2e.procs import Cluster
from worldpool import Client, HandlerTable, Workflow, handler
from worldpool.embedded import EmbeddedPool
from worldpool.errors import ConfigError, TaskFailedError, ValidationError, WorkflowError
from worldpool.models import AffinityMode, TaskSpec


def test_the_declaration_sets_the_task_fields() -> None:
    @handler(
        name="infer",
        capabilities=["coding"],
        min_vram_gb=24,
        model="llama-3-70b",
        min_context_tokens=32_000,
        regions=["eu-*"],
        interactive=True,
        retries=5,
        timeout_s=120,
        affinity="session-1",
    )
    def infer(inp: PlanInput) -> PlanOutput:
        return PlanOutput(plan=[inp.goal])

    spec = TaskSpec.model_validate({"handler": infer.name, **infer.task_defaults()})
    assert spec.requirements.gpu and spec.requirements.min_vram_gb == 24
    assert spec.requirements.model == "llama-3-70b"
    assert spec.requirements.min_context_tokens == 32_000
    assert spec.requirements.regions == ["eu-*"]
    assert spec.capabilities == {"coding"} and spec.interactive
    assert spec.retry.max_retries == 5 and spec.execution_timeout_s == 120
    assert spec.affinity is not None and spec.affinity.key == "session-1"
    assert spec.affinity.mode is AffinityMode.SOFT
    assert infer(PlanInput(goal="g")) == PlanOutput(plan=["g"])  # still the function
    assert review.name == "review" and review.wants_context and review.is_async


def test_bad_declarations_are_refused() -> None:
    with pytest.raises(ConfigError, match="takes \\(input\\) or \\(ctx, input\\)"):
        handler(name="none")(lambda: None)
    with pytest.raises(ConfigError, match="name"):
        handler(name="no spaces")(lambda x: x)
    with pytest.raises(ConfigError, match="unknown capability 'inference'"):
        handler(name="x", capabilities=["inference"])(lambda x: x)
    with pytest.raises(ConfigError, match="registered as"):
        HandlerTable({"other": plan})
    with pytest.raises(ConfigError, match=r"not a @worldpool\.handler"):
        HandlerTable([print])  # type: ignore[list-item]


async def exercise(client: Client) -> None:
    out = await client.run(plan, PlanInput(goal="ship", steps=3), timeout_s=30)
    assert isinstance(out, PlanOutput) and out.plan == ["ship #0", "ship #1", "ship #2"]
    assert (await client.run(plan, {"goal": "dict"}, timeout_s=30)).plan[0] == "dict #0"

    with pytest.raises(ValidationError, match=r"PlanInput\.steps: .*less than or equal to 10"):
        await client.submit(plan, {"goal": "x", "steps": 11})
    with pytest.raises(ValidationError, match=r"PlanInput\.goal: Field required"):
        await client.submit(plan, {})
    with pytest.raises(ValidationError, match="expected PlanInput, got PlanOutput"):
        await client.submit(plan, PlanOutput(plan=[]))

    # The worker validates again: by name, nothing checks the payload before the wire.
    raw = await client.submit("plan", {"goal": ["not", "text"]})
    with pytest.raises(TaskFailedError) as refused:
        await raw.result(timeout_s=30)
    assert "PlanInput.goal" in str(refused.value.error) and refused.value.attempts == 1
    lying = await client.submit(liar, PlanInput(goal="x"))
    with pytest.raises(TaskFailedError, match=r"output PlanOutput\.plan"):
        await lying.result(timeout_s=30)

    flow = Workflow("typed")
    first = flow.step("plan", handler=plan, payload=PlanInput(goal="wf", steps=1))
    flow.step("review", handler=review, payload=PlanOutput(plan=["a", "b"]), after=first)
    done = await (await client.submit_workflow(flow.build())).result(timeout_s=30)
    results = {s.step: s.result for s in done.steps}
    assert results == {"plan": {"plan": ["wf #0"]}, "review": {"reviewed": 2}}
    with pytest.raises(WorkflowError, match=r"PlanInput\.steps"):
        Workflow("bad").step("p", handler=plan, payload={"goal": "x", "steps": 0})


async def test_typed_handlers_embedded() -> None:
    async with EmbeddedPool(HANDLERS) as pool:
        await exercise(pool.client)


@pytest.fixture
async def deployment(cluster: Cluster) -> AsyncIterator[Client]:
    async with deployed(cluster, "tests.client.typed_handlers:HANDLERS") as client:
        yield client


async def test_typed_handlers_against_serve_and_a_worker_process(deployment: Client) -> None:
    await exercise(deployment)
