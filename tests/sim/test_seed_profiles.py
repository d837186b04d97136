"""The seed's worker profiles, as the seed writes them, load unchanged from a pool file;
their hardware groups are typed, shown, and usable as task requirements."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from pydantic import ValidationError

from worldpool.models import Requirements, TaskSpec, Worker, WorkerState
from worldpool.render import hardware_summary
from worldpool.routing import PoolSnapshot, Router, RoutingContext, RoutingPolicy
from worldpool.sim.pools import load_pool_file

SEED_FILE = Path(__file__).parent / "data" / "seed_profiles.json"


def test_the_seeds_example_profiles_load_unchanged(tmp_path: Path) -> None:
    pool = {p.id: p for p in load_pool_file(SEED_FILE)}
    assert list(pool) == ["dgx-tokyo-01", "browser-aws-useast-03", "sandbox-onprem-01"]
    gpu, browser, sandbox = pool.values()
    assert gpu.capabilities == {"coding", "planning", "reviewing", "research"}
    assert gpu.location.region == "tokyo" and gpu.location.city == "Tokyo, Japan"
    assert gpu.latency_to_orchestrator_ms == 45
    hw = gpu.hardware
    [served] = hw.models  # the seed's llm_inference table, as a served model
    assert (served.name, served.context_tokens, served.concurrent_requests) == (
        "qwen3-235b",
        128_000,
        8,
    )
    [vision] = hw.vision_models
    assert vision.name == "qwen2-vl-72b" and vision.supports_ocr
    assert hw.code_analysis is not None
    assert hw.code_analysis.language_support == ["python", "javascript", "typescript"]
    b = browser.hardware.browser_automation
    assert b is not None and (b.vnc_port, b.recording, b.concurrent_sessions) == (5900, True, 4)
    assert not b.headless and browser.location.region == "virginia"
    net = browser.hardware.network
    assert net is not None and net.proxy_support and net.captcha_solving
    v = sandbox.hardware.virtualization
    assert v is not None and (v.platform, v.concurrent_vms, v.boot_time_ms) == (
        "firecracker",
        32,
        125,
    )
    assert v.snapshot_support and sandbox.location.region == "on-prem"
    iso = sandbox.hardware.isolation
    assert iso is not None and iso.network_isolation and iso.filesystem_isolation
    assert iso.resource_limits is not None
    assert (iso.resource_limits.max_memory_mb, iso.resource_limits.max_vcpu) == (2048, 2)
    assert iso.resource_limits.max_disk_mb == 10240
    # The same profiles written in worldpool's own spelling load to the same thing.
    own = tmp_path / "own.json"
    own.write_text(json.dumps([p.model_dump(mode="json") for p in pool.values()]))
    assert load_pool_file(own) == list(pool.values())
    assert "firecracker x32 125ms snapshots" in hardware_summary(sandbox.hardware)
    assert "browser playwright vnc:5900 x4 rec" in hardware_summary(browser.hardware)


def test_a_misspelt_group_field_is_still_refused(tmp_path: Path) -> None:
    data = json.loads(SEED_FILE.read_text())
    data["workers"][2]["hardware_capabilities"]["virtualization"]["snapshots"] = True
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(data))
    with pytest.raises(Exception, match=r"snapshots.*Extra inputs"):
        load_pool_file(bad)


def _route(features: dict[str, object]) -> tuple[str | None, dict[str, str]]:
    workers = [
        Worker(
            profile=p.model_copy(update={"handlers": frozenset({"h"})}),
            state=WorkerState(worker_id=p.id),
        )
        for p in load_pool_file(SEED_FILE)
    ]
    spec = TaskSpec(handler="h", requirements=Requirements.model_validate({"features": features}))
    decision = Router(RoutingPolicy()).decide(
        RoutingContext(task=spec, now=time.time()), PoolSnapshot(workers)
    )
    reasons = {
        c.worker_id: "; ".join(v.reason for v in c.verdicts if not v.ok)
        for c in decision.candidates
        if not c.feasible
    }
    return decision.winner, reasons


def test_group_fields_are_task_requirements() -> None:
    assert _route({"virtualization.snapshot_support": True})[0] == "sandbox-onprem-01"
    assert _route({"vision_models.supports_ocr": True})[0] == "dgx-tokyo-01"
    assert _route({"browser_automation.concurrent_sessions": 4})[0] == "browser-aws-useast-03"
    assert _route({"isolation.resource_limits.max_memory_mb": 2048})[0] == "sandbox-onprem-01"
    assert _route({"code_analysis.language_support": ["Python", "typescript"]})[0] == (
        "dgx-tokyo-01"
    )
    winner, reasons = _route({"browser_automation.concurrent_sessions": 8})
    assert winner is None
    assert (
        "browser_automation.concurrent_sessions=4, task needs at least 8"
        in (reasons["browser-aws-useast-03"])
    )
    assert "has no browser_automation.concurrent_sessions" in reasons["sandbox-onprem-01"]


def test_unknown_feature_keys_are_refused_with_the_fields_there_are() -> None:
    with pytest.raises(ValidationError, match="Virtualization has no field 'snapshot'"):
        Requirements(features={"virtualization.snapshot": True})
    with pytest.raises(ValidationError, match=r"use 'group\.field'"):
        Requirements(features={"gpu.count": 1})
    with pytest.raises(ValidationError, match="is a group"):
        Requirements(features={"isolation.resource_limits": True})
