"""Loading workflows from TOML and JSON files (worldpool.workflow.files)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.workflow.fixtures import seed_workflow
from worldpool.errors import WorkflowError
from worldpool.models import AffinityMode
from worldpool.workflow.builder import topological_order
from worldpool.workflow.files import load_workflow_file

SEED_TOML = """
name = "fix-auth-bug"
id = "fix-auth-bug-1"
user_location = "tokyo"

[[steps]]
name = "planning"
handler = "plan"
capabilities = ["planning"]
requirements = { gpu = true, min_vram_gb = 40 }
payload = { goal = "Fix the authentication bug in the login flow" }

[[steps]]
name = "understanding"
handler = "analyze"
after = "planning"
interactive = true

[[steps]]
name = "fix"
handler = "fix"
sticky_to = "understanding"
sticky_mode = "hard"
sticky_wait_s = 1.5
"""


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_load_toml(tmp_path: Path) -> None:
    spec = load_workflow_file(write(tmp_path, "fix.toml", SEED_TOML), known_handlers=None)
    assert (spec.id, spec.name, spec.user_location) == ("fix-auth-bug-1", "fix-auth-bug", "tokyo")
    assert topological_order(spec) == ["planning", "understanding", "fix"]
    planning, understanding, fix = spec.steps
    assert planning.task.requirements.min_vram_gb == 40
    assert understanding.after == ["planning"] and understanding.task.interactive
    assert fix.after == ["understanding"] and fix.sticky_to == "understanding"
    assert fix.task.affinity is not None
    assert (fix.task.affinity.mode, fix.task.affinity.wait_s) == (AffinityMode.HARD, 1.5)


def test_steps_may_be_a_table_keyed_by_name(tmp_path: Path) -> None:
    text = '[steps.a]\nhandler = "h"\n[steps.b]\nhandler = "h"\nafter = ["a"]\n'
    spec = load_workflow_file(write(tmp_path, "named.toml", text))
    assert spec.name == "named"  # defaults to the file name
    assert [s.name for s in spec.steps] == ["a", "b"]


def test_json_round_trip_of_the_canonical_shape(tmp_path: Path) -> None:
    spec = seed_workflow()
    path = write(tmp_path, "seed.json", spec.model_dump_json(indent=2))
    assert load_workflow_file(path) == spec


def test_known_handlers_are_checked(tmp_path: Path) -> None:
    path = write(tmp_path, "fix.toml", SEED_TOML)
    with pytest.raises(WorkflowError, match=r"uses handler 'analyze', which no worker registers"):
        load_workflow_file(path, known_handlers={"plan", "fix"})


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        (
            "bad.toml",
            SEED_TOML.replace("min_vram_gb = 40", "min_vram_gb = -1"),
            "bad.toml: steps[0]: step 'planning' of workflow 'fix-auth-bug' is invalid: "
            "requirements.min_vram_gb: Input should be greater than or equal to 0",
        ),
        (
            "typo.toml",
            SEED_TOML.replace("interactive = true", "interactiv = true"),
            "typo.toml: steps[1]: step 'understanding': unknown task field 'interactiv'. "
            "Did you mean 'interactive'?",
        ),
        (
            "top.json",
            json.dumps({"name": "x", "step": []}),
            "top.json: unknown top-level field 'step'. Did you mean 'steps'?",
        ),
        ("empty.json", json.dumps({"steps": []}), "empty.json: steps: is empty"),
        ("nosteps.toml", 'name = "x"\n', "nosteps.toml: steps: missing or not a list"),
        (
            "nohandler.toml",
            '[[steps]]\nname = "a"\n',
            "nohandler.toml: steps[0]: handler: step 'a' needs a handler name",
        ),
        (
            "cycle.toml",
            '[[steps]]\nname = "a"\nhandler = "h"\nafter = ["b"]\n'
            '[[steps]]\nname = "b"\nhandler = "h"\nafter = ["a"]\n',
            "cycle.toml: workflow 'cycle': steps form a cycle: a -> b -> a",
        ),
        ("broken.toml", "name = \n", "broken.toml is not valid TOML"),
        ("broken.json", '{"steps": [}', "broken.json is not valid JSON: Expecting value (line 1"),
        ("list.json", "[]", "list.json: the top level must be a table"),
        ("wf.yaml", "steps: []", "wf.yaml: unknown workflow file type '.yaml'; use .toml or .json"),
        (
            "canon.json",
            json.dumps({"steps": [{"name": "a", "task": {"handler": "h", "priority": 1000}}]}),
            "canon.json: steps[0]: task.priority: Input should be less than or equal to 100",
        ),
    ],
)
def test_errors_name_the_file_and_the_field(
    tmp_path: Path, name: str, text: str, message: str
) -> None:
    path = write(tmp_path, name, text)
    with pytest.raises(WorkflowError, match=re.escape(str(path.parent / message))):
        load_workflow_file(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(WorkflowError, match=r"cannot read workflow file .*nope\.toml"):
        load_workflow_file(tmp_path / "nope.toml")
