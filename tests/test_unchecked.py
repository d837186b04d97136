"""Models built without validation equal validated ones, at every call site in src/.

Every ``construct(Model, FIELDS_SET, {...})`` call in ``src/worldpool`` is found by
parsing the source. For each one: the values dict names every field of the model; each
field outside ``FIELDS_SET`` is passed a literal equal to the model's default; and, on
representative values for the fields it sets, the fast object equals the validated one
(same ``model_dump``, same ``model_fields_set``). A new field, a changed default or a
new validator therefore fails here, not in production.
"""

from __future__ import annotations

import ast
import importlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from worldpool.models import (
    Affinity,
    AffinityMode,
    ArtifactRef,
    CandidateReport,
    Envelope,
    Event,
    EventKind,
    Location,
    RoutingDecision,
    TaskRecord,
    TaskSpec,
    TaskStatus,
    Verdict,
    Worker,
    WorkerProfile,
    WorkerState,
    WorkerStatus,
)
from worldpool.unchecked import assign, construct

SRC = Path(__file__).resolve().parents[1] / "src" / "worldpool"
_DIGEST = "sha256:" + "ab" * 32
_VERDICT = Verdict(plugin="health", ok=False, code="offline", reason="is offline")
_REPORT = CandidateReport(worker_id="w1", region="eu-west-1", feasible=True, total=0.5)
_PROFILE = WorkerProfile(id="w1", location=Location(region="eu-west-1"))
_STATE = WorkerState(worker_id="w1", running=1, last_heartbeat=5.0, cached=[_DIGEST])

# Representative values for every field of every model built with construct(); a field
# left out here (a new one) fails test_samples_name_every_field.
SAMPLES: dict[type[BaseModel], dict[str, Any]] = {
    CandidateReport: {
        "worker_id": "w1",
        "region": "eu-west-1",
        "feasible": False,
        "verdicts": [_VERDICT],
        "scores": {"load": 0.5, "cost": 1.0},
        "total": 0.75,
        "details": {"throughput": "H100 at 95 tokens/s"},
    },
    RoutingDecision: {
        "task_id": "t1",
        "winner": "w1",
        "runner_up": "w2",
        "weights": {"load": 0.3},
        "candidates": [_REPORT],
        "pool_size": 3,
        "feasible_count": 2,
        "excluded_by": {"health:offline": 1},
        "omitted_candidates": 1,
        "sampled": False,
        "reasons": ["no online worker can take this task"],
        "suggestion": "start a worker",
        "waiting_for_affinity": True,
        "decided_at": 1_700_000_000.5,
        "duration_us": 12.5,
        "explained": False,
    },
    Worker: {"profile": _PROFILE, "state": _STATE},
    WorkerState: {
        "worker_id": "w1",
        "status": WorkerStatus.DRAINING,
        "running": 2,
        "last_heartbeat": 1_700_000_000.0,
        "heartbeat_seq": 41,
        "consuming": True,
        "latency_ms": 12.0,
        "cached": [_DIGEST],
        "sticky_keys": ["wf-1:plan"],
    },
    Affinity: {"key": "wf-1:plan", "mode": AffinityMode.SOFT, "wait_s": 30.0},
    ArtifactRef: {
        "digest": _DIGEST,
        "name": "out-1",
        "size": 1024,
        "media_type": "application/octet-stream",
        "producer": "w1",
    },
    Event: {
        "kind": EventKind.TASK_DISPATCHED,
        "at": 1_700_000_000.25,
        "seq": "00000000000000000001",
        "task_id": "t1",
        "workflow_id": "wf-1",
        "step": "plan",
        "worker_id": "w1",
        "attempt": 2,
        "message": "dispatched",
        "data": {"handler": "plan", "region": "eu-west-1", "n": 3, "nested": [1, None]},
    },
    Envelope: {
        "task_id": "t1",
        "attempt": 1,
        "handler": "plan",
        "payload": {"repo": "x", "n": [1, 2.5, None, {"k": True}]},
        "inputs": {"src": ArtifactRef(digest=_DIGEST, name="src.tar", size=10)},
        "deadline": 1_700_000_100.0,
        "traceparent": "00-" + "1" * 32 + "-" + "2" * 16 + "-01",
        "workflow_id": "wf-1",
        "step": "plan",
        "upstream": {"plan": {"steps": 3}},
        "heartbeat_timeout_s": 10.0,
        "signature": "abc",
        "worker_id": "w1",
        "expires_at": 1_700_000_900.0,
        "nonce": "0123456789abcdef",
        "secrets": {"API_KEY": "env:API_KEY"},
    },
}


@dataclass(frozen=True)
class CallSite:
    where: str
    model: type[BaseModel]
    fields_set: frozenset[str]
    values: dict[str, ast.expr]  # field -> the expression the call site passes


def _modules() -> Iterator[tuple[str, ast.Module]]:
    for path in sorted(SRC.rglob("*.py")):
        parts = path.relative_to(SRC.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        yield name, ast.parse(path.read_text(), str(path))


def _dict_keys(node: ast.Dict, where: str) -> dict[str, ast.expr]:
    out = {}
    for key, value in zip(node.keys, node.values, strict=True):
        assert isinstance(key, ast.Constant) and isinstance(key.value, str), (
            f"{where}: construct() values need literal string keys"
        )
        out[key.value] = value
    return out


def _values_of(arg: ast.expr, scope: ast.AST, where: str) -> dict[str, ast.expr]:
    """The dict literal passed to construct(), directly or through a local name."""
    if isinstance(arg, ast.Dict):
        return _dict_keys(arg, where)
    assert isinstance(arg, ast.Name), f"{where}: pass construct() a dict literal or a name"
    for node in ast.walk(scope):
        if (
            isinstance(node, ast.Assign)
            and any(isinstance(t, ast.Name) and t.id == arg.id for t in node.targets)
            and isinstance(node.value, ast.Dict)
        ):
            return _dict_keys(node.value, where)
    raise AssertionError(f"{where}: {arg.id} is not assigned a dict literal in its function")


def call_sites() -> list[CallSite]:
    sites = []
    for name, tree in _modules():
        if name == "worldpool.unchecked":
            continue
        aliases = {
            a.asname or a.name
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom) and node.module == "worldpool.unchecked"
            for a in node.names
            if a.name == "construct"
        }
        if not aliases:
            continue
        module = importlib.import_module(name)
        functions = [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)]
        for node in ast.walk(tree):
            if not (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id in aliases
            ):
                continue
            where = f"{name}:{node.lineno}"
            cls_arg, fields_arg, values_arg = node.args
            assert isinstance(cls_arg, ast.Name) and isinstance(fields_arg, ast.Name), where
            scope = next(
                f for f in functions if f.lineno <= node.lineno <= (f.end_lineno or f.lineno)
            )
            sites.append(
                CallSite(
                    where,
                    getattr(module, cls_arg.id),
                    frozenset(getattr(module, fields_arg.id)),
                    _values_of(values_arg, scope, where),
                )
            )
    return sites


SITES = call_sites()


def test_the_scan_finds_the_known_call_sites() -> None:
    # The router's reports and decision, the pool's workers, the orchestrator's events
    # and envelopes and the simulator's states: the scan must not silently find none.
    found = {site.model for site in SITES}
    assert {CandidateReport, RoutingDecision, Worker, Event, Envelope, WorkerState} <= found


@pytest.mark.parametrize("model", list(SAMPLES), ids=lambda m: m.__name__)
def test_samples_name_every_field(model: type[BaseModel]) -> None:
    assert set(SAMPLES[model]) == set(model.model_fields)
    model.model_validate(SAMPLES[model])  # and they are valid


@pytest.mark.parametrize("site", SITES, ids=lambda s: s.where)
def test_fast_construction_equals_validated_construction(site: CallSite) -> None:
    model, fields = site.model, site.model.model_fields
    assert model in SAMPLES, f"{site.where}: add representative {model.__name__} values above"
    assert set(site.values) == set(fields), (
        f"{site.where}: construct({model.__name__}) must pass every field; "
        f"missing {sorted(set(fields) - set(site.values))}"
    )
    assert site.fields_set <= set(fields), site.where
    values = {}
    for name in fields:
        if name in site.fields_set:
            values[name] = SAMPLES[model][name]
        else:  # not "set": the call site must pass the model's default, as a literal
            values[name] = ast.literal_eval(site.values[name])
    fast = construct(model, site.fields_set, dict(values))
    validated = model.model_validate({k: values[k] for k in site.fields_set})
    assert fast.model_dump() == validated.model_dump(), site.where
    assert fast.model_dump_json() == validated.model_dump_json(), site.where
    assert fast.model_fields_set == validated.model_fields_set, site.where
    assert fast == validated, site.where


def test_construct_behaves_like_a_model() -> None:
    fields = {"worker_id", "region", "feasible", "verdicts"}
    values = {**SAMPLES[CandidateReport], "scores": {}, "total": 0.0}
    ours = construct(CandidateReport, fields, dict(values))
    theirs = CandidateReport.model_construct(_fields_set=set(fields), **values)
    assert ours == theirs
    assert ours.model_dump(exclude_unset=True) == theirs.model_dump(exclude_unset=True)
    assert CandidateReport.model_validate(ours.model_dump()) == ours
    ours.total = 0.5  # validate_assignment still works and records the field as set
    assert ours.total == 0.5 and "total" in ours.model_fields_set
    again = construct(CandidateReport, fields, dict(values))
    assert "total" not in again.model_fields_set  # the caller's set is not shared


def test_a_constructed_decision_round_trips_through_json() -> None:
    d = construct(
        RoutingDecision, set(RoutingDecision.model_fields), dict(SAMPLES[RoutingDecision])
    )
    assert RoutingDecision.model_validate_json(d.model_dump_json()) == d


def test_assign_equals_a_validated_copy_with_the_update() -> None:
    record = TaskRecord(spec=TaskSpec(id="t1", handler="plan"), submitted_at=1.0)
    changes: dict[str, Any] = {
        "status": TaskStatus.DISPATCHED,
        "attempt": 1,
        "worker_id": "w1",
        "pending_reason": None,
    }
    expected = TaskRecord.model_validate({**record.model_dump(exclude_unset=True), **changes})
    copied = record.model_copy(update=changes)
    assign(record, **changes)
    assert record == expected == copied
    assert record.model_fields_set == expected.model_fields_set == copied.model_fields_set


def test_no_other_module_writes_pydantic_internals() -> None:
    # Bypasses live in worldpool.unchecked; anywhere else they could not be checked here.
    offenders = []
    for name, tree in _modules():
        if name == "worldpool.unchecked":
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and node.attr in (
                "__pydantic_fields_set__",
                "model_construct",
            ):
                offenders.append(f"{name}:{node.lineno} {node.attr}")
    assert offenders == []
