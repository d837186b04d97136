"""The workflow builder, validation, ready set, state and step tasks (worldpool.workflow.builder)."""

from __future__ import annotations

import itertools
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.workflow.fixtures import artifact, seed_workflow, task_record
from worldpool.errors import WorkflowError
from worldpool.models import (
    AffinityMode,
    StepSpec,
    TaskSpec,
    TaskStatus,
    WorkflowSpec,
    WorkflowState,
)
from worldpool.workflow.builder import (
    StepRef,
    Workflow,
    blocked_steps,
    ready_steps,
    step_task_spec,
    topological_order,
    upstream_values,
    validate,
    workflow_state,
)

S = TaskStatus


def raw_spec(*steps: tuple[str, list[str]], sticky: dict[str, str] | None = None) -> WorkflowSpec:
    """A spec built without the builder, so validation sees exactly these edges."""
    sticky = sticky or {}
    return WorkflowSpec(
        id="wf-raw",
        name="raw",
        steps=[
            StepSpec(name=n, task=TaskSpec(handler="h"), after=after, sticky_to=sticky.get(n))
            for n, after in steps
        ],
    )


# --------------------------------------------------------------------------- builder


def test_builder_makes_the_seed_workflow() -> None:
    spec = seed_workflow()
    by_name = {s.name: s for s in spec.steps}

    assert spec.id == "fix-auth-bug-12345"
    assert spec.user_location == "tokyo"
    assert by_name["localization"].after == ["planning"]
    assert by_name["review"].after == ["tests", "browser"]
    assert by_name["planning"].task.requirements.gpu is True
    assert by_name["planning"].task.payload == {
        "goal": "Fix the authentication bug in the login flow"
    }
    assert by_name["understanding"].task.interactive is True
    assert by_name["localization"].task.capabilities == {"shell_operations", "file_operations"}
    # sticky_to implies after and sets a soft affinity on the step's worker
    fix = by_name["fix"]
    assert fix.after == ["understanding"]
    assert fix.sticky_to == "understanding"
    assert fix.task.affinity is not None
    assert fix.task.affinity.key == "fix-auth-bug-12345:understanding"
    assert fix.task.affinity.mode == AffinityMode.SOFT


def test_builder_accepts_names_and_handles_and_hard_stickiness() -> None:
    wf = Workflow("w", id="w1")
    a = wf.step("a", handler="h")
    wf.step("b", handler="h", after=["a"])
    c = wf.step(
        "c", handler="h", after=[a, "b"], sticky_to="b", sticky_mode="hard", sticky_wait_s=0
    )
    spec = wf.build(known_handlers={"h"})

    assert c == StepRef("w1", "c")
    step_c = spec.steps[2]
    assert step_c.after == ["a", "b"]  # sticky_to already listed: not added twice
    assert step_c.task.affinity is not None
    assert step_c.task.affinity.mode == AffinityMode.HARD
    assert step_c.task.affinity.wait_s == 0


def test_builder_takes_a_single_parent_without_a_list() -> None:
    wf = Workflow("w")
    plan = wf.step("plan", handler="h")
    wf.step("b", handler="h", after="plan")
    wf.step("c", handler="h", after=plan)
    assert [s.after for s in wf.build().steps] == [[], ["plan"], ["plan"]]


def test_builder_default_id_is_a_readable_slug() -> None:
    wf = Workflow("Fix the auth bug!")
    wf.step("a", handler="h")
    spec = wf.build()
    assert spec.id.startswith("Fix-the-auth-bug-")
    assert spec.name == "Fix the auth bug!"


def test_builder_allows_forward_references_by_name() -> None:
    wf = Workflow("w")
    wf.step("b", handler="h", after=["a"])
    wf.step("a", handler="h")
    assert topological_order(wf.build()) == ["a", "b"]


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda wf: wf.step("bad name", handler="h"), "step name 'bad name' is not valid"),
        (lambda wf: wf.step("a", handler="h"), "step 'a' is already declared"),
        (
            lambda wf: wf.step("b", handler="h", capabilites=["coding"]),
            "unknown task field 'capabilites'. Did you mean 'capabilities'?",
        ),
        (lambda wf: wf.step("b", handler="h", id="x"), "'id' is set by the workflow; remove it"),
        (
            lambda wf: wf.step("b", handler="h", priority=500),
            "step 'b' of workflow 'w' is invalid: priority: Input should be less than or equal",
        ),
        (
            lambda wf: wf.step("b", handler="h", capabilities=["teleport"]),
            "capabilities",
        ),
        (
            lambda wf: wf.step("b", handler="h", sticky_to="a", affinity={"key": "k"}),
            "sets both sticky_to and affinity",
        ),
        (
            lambda wf: wf.step("b", handler="h", after=[StepRef("other", "a")]),
            "refers to step 'a' of another workflow ('other')",
        ),
        (lambda wf: wf.step("b", handler="h", after=[3]), "takes step handles or step names"),
    ],
)
def test_builder_rejects_bad_steps(call: Callable[[Workflow], object], message: str) -> None:
    wf = Workflow("w", id="w1")
    wf.step("a", handler="h")
    with pytest.raises(WorkflowError, match=message.replace("(", r"\(").replace(")", r"\)")):
        call(wf)


def test_build_without_steps_says_what_to_do() -> None:
    with pytest.raises(WorkflowError, match=r"has no steps; declare at least one"):
        Workflow("empty").build()


# --------------------------------------------------------------------------- validation


def test_cycle_error_names_the_path() -> None:
    spec = raw_spec(("a", ["c"]), ("b", ["a"]), ("c", ["b"]), ("d", []))
    with pytest.raises(WorkflowError) as err:
        validate(spec)
    assert "steps form a cycle: a -> b -> c -> a" in str(err.value)
    assert "remove one of these `after` dependencies" in str(err.value)
    with pytest.raises(WorkflowError, match="a -> b -> c -> a"):
        topological_order(spec)


def test_cycle_through_the_builder_is_caught_at_build() -> None:
    wf = Workflow("loop")
    wf.step("x", handler="h", after=["y"])
    wf.step("y", handler="h", after=["x"])
    with pytest.raises(WorkflowError, match="workflow 'loop': steps form a cycle: x -> y -> x"):
        wf.build()


def test_self_dependency() -> None:
    with pytest.raises(WorkflowError, match="step 'a' lists itself in after; remove it"):
        validate(raw_spec(("a", ["a"])))


def test_unknown_step_in_after_suggests_the_closest_name() -> None:
    spec = raw_spec(("planning", []), ("fix", ["planing"]))
    with pytest.raises(WorkflowError) as err:
        validate(spec)
    assert str(err.value) == (
        "workflow 'raw': step 'fix' runs after 'planing', which is not a step of this "
        "workflow. Did you mean 'planning'?"
    )


def test_unknown_sticky_to() -> None:
    spec = raw_spec(
        ("understanding", []), ("fix", ["understanding"]), sticky={"fix": "undrstanding"}
    )
    with pytest.raises(
        WorkflowError, match=r"sticky_to 'undrstanding'.*Did you mean 'understanding'"
    ):
        validate(spec)


def test_sticky_to_must_be_an_ancestor() -> None:
    # a and b are parallel: b cannot follow a's worker, a has not run before it
    spec = raw_spec(("a", []), ("b", []), sticky={"b": "a"})
    with pytest.raises(WorkflowError) as err:
        validate(spec)
    assert "step 'b' is sticky_to 'a', which does not run before it; add 'a' to its after" in str(
        err.value
    )
    # an indirect ancestor is fine
    validate(raw_spec(("a", []), ("m", ["a"]), ("b", ["m"]), sticky={"b": "a"}))


def test_sticky_to_itself() -> None:
    with pytest.raises(WorkflowError, match="step 'a' is sticky_to itself"):
        validate(raw_spec(("a", []), sticky={"a": "a"}))


def test_duplicate_names_are_reported() -> None:
    step = StepSpec(name="a", task=TaskSpec(handler="h"))
    spec = WorkflowSpec.model_construct(id="w", name="dups", steps=[step, step])
    with pytest.raises(WorkflowError, match="step name 'a' is used twice"):
        validate(spec)


def test_unknown_handler_when_handlers_are_known() -> None:
    spec = raw_spec(("a", []))
    validate(spec)  # no handler set given: not checked
    with pytest.raises(WorkflowError) as err:
        validate(spec, known_handlers={"hh", "plan"})
    assert "step 'a' uses handler 'h', which no worker registers. Did you mean 'hh'?" in str(
        err.value
    )
    assert "Known handlers: hh, plan" in str(err.value)


def test_too_long_task_id() -> None:
    wf = Workflow("w", id="w" * 100)
    wf.step("s" * 40, handler="h")
    with pytest.raises(WorkflowError, match=r"would be 141 characters \(limit 128\); shorten"):
        wf.build()


def test_every_problem_is_listed_at_once() -> None:
    spec = raw_spec(("a", ["zz"]), ("b", ["a"]))
    with pytest.raises(WorkflowError) as err:
        validate(spec, known_handlers={"other"})
    message = str(err.value)
    assert message.startswith("workflow 'raw' has 3 problems:\n  - ")
    assert "runs after 'zz'" in message
    assert message.count("uses handler 'h'") == 2


# --------------------------------------------------------------------------- ready set, state


def test_ready_set_on_the_seed_dag() -> None:
    spec = seed_workflow()
    assert ready_steps(spec, {}) == ["planning"]
    assert ready_steps(spec, {"planning": S.RUNNING}) == []
    done = {"planning": S.SUCCEEDED, "localization": S.SUCCEEDED, "understanding": S.SUCCEEDED}
    assert ready_steps(spec, done) == ["fix"]
    # the two verification branches become ready together
    assert ready_steps(spec, {**done, "fix": S.SUCCEEDED}) == ["tests", "browser"]
    # the join waits for both
    assert ready_steps(spec, {**done, "fix": S.SUCCEEDED, "tests": S.SUCCEEDED}) == ["browser"]
    both = {**done, "fix": S.SUCCEEDED, "tests": S.SUCCEEDED, "browser": S.RUNNING}
    assert ready_steps(spec, both) == []
    assert ready_steps(spec, {**both, "browser": S.SUCCEEDED}) == ["review"]


def test_ready_set_on_a_diamond_with_several_roots() -> None:
    spec = raw_spec(("a", []), ("b", ["a"]), ("c", ["a"]), ("d", ["b", "c"]), ("e", []))
    assert ready_steps(spec, {}) == ["a", "e"]
    assert ready_steps(spec, {"a": S.SUCCEEDED, "e": S.PENDING}) == ["b", "c"]
    assert ready_steps(spec, {"a": S.SUCCEEDED, "b": S.SUCCEEDED, "c": S.RETRYING}) == ["e"]


def test_ready_steps_rejects_unknown_step_names() -> None:
    with pytest.raises(WorkflowError, match=r"statuses name step\(s\) 'nope' that workflow"):
        ready_steps(raw_spec(("a", [])), {"nope": S.RUNNING})


def test_blocked_steps_follow_a_failure_downstream() -> None:
    spec = raw_spec(("a", []), ("b", ["a"]), ("c", ["a"]), ("d", ["b", "c"]), ("e", ["c"]))
    statuses = {"a": S.SUCCEEDED, "b": S.FAILED, "c": S.RUNNING}
    assert blocked_steps(spec, statuses) == ["d"]
    assert blocked_steps(spec, {**statuses, "c": S.CANCELLED}) == ["d", "e"]
    assert blocked_steps(spec, {"a": S.SUCCEEDED}) == []


def test_workflow_state_transitions() -> None:
    spec = raw_spec(("a", []), ("b", ["a"]), ("c", ["a"]), ("d", ["b", "c"]))
    assert workflow_state(spec, {}) == WorkflowState.PENDING
    assert workflow_state(spec, {"a": S.PENDING}) == WorkflowState.PENDING
    assert workflow_state(spec, {"a": S.DISPATCHED}) == WorkflowState.IN_PROGRESS
    assert workflow_state(spec, {"a": S.SUCCEEDED}) == WorkflowState.IN_PROGRESS
    # b failed but c is still running: the independent branch is left to finish
    failing = {"a": S.SUCCEEDED, "b": S.FAILED, "c": S.RUNNING}
    assert workflow_state(spec, failing) == WorkflowState.IN_PROGRESS
    assert workflow_state(spec, {**failing, "c": S.SUCCEEDED}) == WorkflowState.FAILED
    assert workflow_state(spec, {**failing, "c": S.CANCELLED}) == WorkflowState.FAILED
    cancelled = {"a": S.SUCCEEDED, "b": S.CANCELLED, "c": S.SUCCEEDED}
    assert workflow_state(spec, cancelled) == WorkflowState.CANCELLED
    all_done = dict.fromkeys("abcd", S.SUCCEEDED)
    assert workflow_state(spec, all_done) == WorkflowState.SUCCEEDED


# --------------------------------------------------------------------------- step tasks


def test_step_task_spec_for_a_join_sees_all_parent_artifacts() -> None:
    spec = seed_workflow()
    tests = task_record(
        spec, "tests", S.SUCCEEDED, outputs={"report.xml": artifact("report.xml")}, result=3
    )
    browser = task_record(
        spec,
        "browser",
        S.SUCCEEDED,
        outputs={"shot.png": artifact("shot.png", "image/png"), "report.xml": artifact("b")},
        result={"ok": True},
    )
    parents = {"tests": tests, "browser": browser, "fix": task_record(spec, "fix", S.SUCCEEDED)}

    task = step_task_spec(spec, "review", parents)

    assert task.id == "fix-auth-bug-12345.review"
    assert task.idempotency_key == "fix-auth-bug-12345.review"
    assert task.workflow_id == "fix-auth-bug-12345"
    assert task.step == "review"
    assert task.handler == "review"
    assert task.user_location == "tokyo"  # the workflow's
    assert task.capabilities == {"reviewing"}
    assert task.inputs == {
        "tests/report.xml": artifact("report.xml"),
        "browser/shot.png": artifact("shot.png", "image/png"),
        "browser/report.xml": artifact("b"),
    }
    assert upstream_values(spec, "review", parents) == {"tests": 3, "browser": {"ok": True}}


def test_step_task_spec_carries_sticky_affinity_and_own_settings() -> None:
    wf = Workflow("w", id="w1", user_location="tokyo")
    wf.step("a", handler="h")
    wf.step(
        "b",
        handler="h",
        sticky_to="a",
        sticky_mode="hard",
        sticky_wait_s=2,
        user_location="london",
        idempotency_key="mine",
        inputs={"seed.txt": artifact("seed.txt")},
    )
    spec = wf.build()
    task = step_task_spec(spec, "b", {"a": task_record(spec, "a", S.SUCCEEDED)})

    assert task.affinity is not None
    assert (task.affinity.key, task.affinity.mode, task.affinity.wait_s) == (
        "w1:a",
        AffinityMode.HARD,
        2,
    )
    assert task.user_location == "london"
    assert task.idempotency_key == "mine"
    assert task.inputs == {"seed.txt": artifact("seed.txt")}


def test_step_task_spec_refuses_missing_or_unfinished_parents() -> None:
    spec = seed_workflow()
    with pytest.raises(WorkflowError, match="needs the task record of its parent 'tests'"):
        step_task_spec(spec, "review", {"browser": task_record(spec, "browser", S.SUCCEEDED)})
    parents = {
        "tests": task_record(spec, "tests", S.SUCCEEDED),
        "browser": task_record(spec, "browser", S.FAILED),
    }
    with pytest.raises(WorkflowError, match="its parent 'browser' is failed, not succeeded"):
        step_task_spec(spec, "review", parents)
    with pytest.raises(WorkflowError, match=r"has no step 'reveiw'\. Did you mean 'review'"):
        step_task_spec(spec, "reveiw", parents)


def test_step_task_spec_root_step_has_no_inputs() -> None:
    spec = seed_workflow()
    task = step_task_spec(spec, "planning", {})
    assert task.inputs == {}
    assert task.affinity is None
    assert task.requirements.gpu is True


# --------------------------------------------------------------------------- properties


@st.composite
def dags(draw: st.DrawFn) -> WorkflowSpec:
    """A random DAG: edges go from lower to higher rank, declared in a shuffled order."""
    n = draw(st.integers(min_value=1, max_value=12))
    names = [f"s{i}" for i in range(n)]
    parents = {
        names[i]: draw(st.lists(st.sampled_from(names[:i]), unique=True)) if i else []
        for i in range(n)
    }
    order = draw(st.permutations(names))
    return WorkflowSpec(
        id="wf-prop",
        steps=[StepSpec(name=n, task=TaskSpec(handler="h"), after=parents[n]) for n in order],
    )


@settings(max_examples=150, deadline=None)
@given(spec=dags(), data=st.data())
def test_order_and_ready_set_respect_every_edge(spec: WorkflowSpec, data: st.DataObject) -> None:
    validate(spec)
    order = topological_order(spec)
    position = {name: i for i, name in enumerate(order)}
    assert sorted(order) == sorted(s.name for s in spec.steps)
    for step in spec.steps:
        for parent in step.after:
            assert position[parent] < position[step.name]

    names = [s.name for s in spec.steps]
    started = data.draw(st.lists(st.sampled_from(names), unique=True))
    statuses = {n: data.draw(st.sampled_from(list(TaskStatus))) for n in started}
    parents = {s.name: s.after for s in spec.steps}
    ready = ready_steps(spec, statuses)
    blocked = blocked_steps(spec, statuses)
    for name in ready:
        assert name not in statuses
        assert all(statuses.get(p) == TaskStatus.SUCCEEDED for p in parents[name])
    assert not set(ready) & set(blocked)


@settings(max_examples=100, deadline=None)
@given(spec=dags(), data=st.data())
def test_a_back_edge_is_always_reported_as_a_cycle(spec: WorkflowSpec, data: st.DataObject) -> None:
    order = topological_order(spec)
    if len(order) < 2:
        return
    i = data.draw(st.integers(0, len(order) - 2))
    j = data.draw(st.integers(i + 1, len(order) - 1))
    # make the earlier step also run after a later one: closes a cycle only if j reaches i,
    # so add the path edge too
    steps = {s.name: s for s in spec.steps}
    first, last = order[i], order[j]
    looped = [
        s.model_copy(update={"after": [*s.after, last]})
        if s.name == first
        else s.model_copy(update={"after": [*s.after, first]})
        if s.name == last and first not in s.after
        else s
        for s in steps.values()
    ]
    bad = spec.model_copy(update={"steps": looped})
    with pytest.raises(WorkflowError, match="steps form a cycle: ") as err:
        validate(bad)
    # the reported path is a real cycle: each step runs after the one before it
    path = str(err.value).split("cycle: ")[1].split(" (")[0].split(" -> ")
    assert path[0] == path[-1]
    after = {s.name: s.after for s in looped}
    for parent, child in itertools.pairwise(path):
        assert parent in after[child]
