from __future__ import annotations

from tests.routing.builders import assert_mask_matches_verdicts, ctx, pool, task, worker
from worldpool.routing.filters.region import RegionFilter

REGIONS = ["eu-west-1", "europe-west1", "us-east-1", "ap-northeast-1", "eastasia"]


def _snap() -> object:
    return pool(
        *(
            worker(f"w-{r}", region=r, labels={"tier": "gold"} if i % 2 else {})
            for i, r in enumerate(REGIONS)
        )
    )


def test_allow_list_with_glob_and_macro_region() -> None:
    snap = _snap()
    f = RegionFilter()
    c = ctx(task(requirements={"regions": ["eu-*"]}))
    assert f.mask(c, snap).tolist() == [True, False, False, False, False]
    c = ctx(task(requirements={"regions": ["europe"]}))
    assert f.mask(c, snap).tolist() == [True, True, False, False, False]
    c = ctx(task(requirements={"regions": ["us-east-1", "asia-pacific"]}))
    assert f.mask(c, snap).tolist() == [False, False, True, True, True]
    assert_mask_matches_verdicts(f, c, snap)
    assert "outside the allowed" in f.verdict(c, snap.workers[0]).reason


def test_exclude_regions_and_labels() -> None:
    snap = _snap()
    f = RegionFilter()
    c = ctx(task(requirements={"exclude_regions": ["europe"], "labels": {"tier": "gold"}}))
    assert f.mask(c, snap).tolist() == [False, False, False, True, False]
    assert_mask_matches_verdicts(f, c, snap)
    codes = {f.verdict(c, w).code for w in snap.workers}
    assert codes == {"region_excluded", "label_mismatch", "ok"}


def test_no_constraints_pass_everyone() -> None:
    snap = _snap()
    assert RegionFilter().mask(ctx(task()), snap).all()
