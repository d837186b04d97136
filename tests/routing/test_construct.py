"""The router's unvalidated constructor builds the same objects as model_construct."""

from __future__ import annotations

from typing import Any

from worldpool.models import CandidateReport, RoutingDecision, Verdict
from worldpool.routing.construct import construct


def test_construct_equals_model_construct_and_behaves_like_a_model() -> None:
    values: dict[str, Any] = {
        "worker_id": "w1",
        "region": "eu-west-1",
        "feasible": False,
        "verdicts": [Verdict(plugin="health", ok=False, code="offline", reason="is offline")],
        "scores": {},
        "total": 0.0,
    }
    fields = {"worker_id", "region", "feasible", "verdicts"}
    ours = construct(CandidateReport, fields, dict(values))
    theirs = CandidateReport.model_construct(_fields_set=set(fields), **values)
    assert ours == theirs
    assert ours.model_dump() == theirs.model_dump()
    assert ours.model_dump(exclude_unset=True) == theirs.model_dump(exclude_unset=True)
    assert CandidateReport.model_validate(ours.model_dump()) == ours
    ours.total = 0.5  # validate_assignment still works and records the field as set
    assert ours.total == 0.5 and "total" in ours.model_fields_set
    again = construct(CandidateReport, fields, dict(values))
    assert "total" not in again.model_fields_set  # the caller's set is not shared


def test_a_constructed_decision_round_trips_through_json() -> None:
    values: dict[str, Any] = {
        name: f.get_default(call_default_factory=True)
        for name, f in RoutingDecision.model_fields.items()
        if name != "task_id"
    }
    d = construct(RoutingDecision, set(RoutingDecision.model_fields), {"task_id": "t", **values})
    assert RoutingDecision.model_validate_json(d.model_dump_json()) == d
