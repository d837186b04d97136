from __future__ import annotations

from tests.routing.builders import assert_mask_matches_verdicts, ctx, pool, task, worker
from worldpool.routing.filters.capabilities import CapabilitiesFilter


def test_required_capabilities_must_be_a_subset_and_the_handler_present() -> None:
    snap = pool(
        worker("generalist", caps=("coding", "planning", "browser_operations")),
        worker("coder", caps=("coding",)),
        worker("no-handler", caps=("coding", "planning"), handlers=("other",)),
        worker("custom", caps=("coding", "planning", "x-gpu-render")),
    )
    f = CapabilitiesFilter()
    c = ctx(task(capabilities=["coding", "planning"]))
    assert f.mask(c, snap).tolist() == [True, False, False, True]
    assert_mask_matches_verdicts(f, c, snap)
    coder = f.verdict(c, snap.workers[1])
    assert coder.code == "missing_capability"
    assert coder.reason == "lacks planning (has coding)"
    assert f.verdict(c, snap.workers[2]).code == "no_handler"
    assert "'run'" in f.verdict(c, snap.workers[2]).reason


def test_custom_capability_and_no_requirements() -> None:
    snap = pool(worker("plain"), worker("render", caps=("x-gpu-render",)))
    f = CapabilitiesFilter()
    assert f.mask(ctx(task(capabilities=["x-gpu-render"])), snap).tolist() == [False, True]
    assert f.mask(ctx(task()), snap).tolist() == [True, True]


def test_a_capability_nobody_has_excludes_everyone() -> None:
    snap = pool(worker("a"), worker("b"))
    c = ctx(task(capabilities=["browser_operations"]))
    assert CapabilitiesFilter().mask(c, snap).tolist() == [False, False]
    assert CapabilitiesFilter().describe(c, {"missing_capability"}) == (
        "has capability browser_operations"
    )
