"""hardware: GPUs (count, model, VRAM), memory, CPUs, served LLM model and tools.

Codes, checked in this order: ``no_gpu``, ``gpu_count``, ``gpu_model`` (case-insensitive
substring, so 'H100' matches 'NVIDIA H100 80GB'), ``vram`` (the largest GPU's VRAM),
``memory``, ``cpus``, ``model`` (an LLM the worker serves, case-insensitive), ``context``
and ``speed`` (a served model, the one named by ``model`` when given, with at least
``min_context_tokens`` of context and ``min_tokens_per_s`` of output speed; reasons say
whether the worker measured the speed or only claims it), ``tools`` (listed tools plus the
worker's browser and virtualization) and ``features`` (the seed's
hardware groups: ``Requirements.features`` such as ``{"virtualization.snapshot_support":
true, "browser_automation.concurrent_sessions": 4}``, see
:func:`worldpool.models.feature_problem`). Profiles only: the result is cached per task
shape, so a feature requirement costs one pass over the pool per profile change.
"""

from __future__ import annotations

from collections.abc import Hashable

import numpy as np

from worldpool.models import (
    Hardware,
    Requirements,
    ServedModel,
    Verdict,
    Worker,
    WorkerProfile,
    feature_problem,
)
from worldpool.routing.filters.base import ColumnFilter, at, join, num
from worldpool.routing.interface import Mask, RoutingContext, Rows, excluded, ok
from worldpool.routing.pool import PoolSnapshot, gpu_models_text, model_names, tool_names


def _gpus_needed(req: Requirements) -> int:
    wants_gpu = req.gpu or req.min_vram_gb > 0 or req.gpu_model is not None
    return max(req.gpu_count, 1 if wants_gpu else 0)


def _feature_key(req: Requirements) -> tuple[tuple[str, str, object], ...]:
    return tuple(
        (k, type(v).__name__, tuple(v) if isinstance(v, list) else v)
        for k, v in sorted(req.features.items())
    )


def _feature_problem(req: Requirements, hardware: Hardware) -> str | None:
    for key, wanted in req.features.items():
        problem = feature_problem(hardware, key, wanted)
        if problem is not None:
            return problem
    return None


def _speed_text(model: ServedModel) -> str:
    how = "measured" if model.measured_at is not None else "claimed"
    return f"{model.name} at {num(model.tokens_per_s)} tokens/s ({how})"


def served_model_problem(profile: WorkerProfile, req: Requirements) -> tuple[str, str] | None:
    """("context" | "speed", reason) when no served model meets the task's minimums."""
    if not req.min_context_tokens and not req.min_tokens_per_s:
        return None
    models = profile.hardware.models
    if req.model:
        models = [m for m in models if m.name.lower() == req.model.lower()]
    if not models:
        return None  # the model check (or "serves nothing") says it
    if req.min_context_tokens:
        roomy = [m for m in models if m.context_tokens >= req.min_context_tokens]
        if not roomy:
            have = join(f"{m.name} with {m.context_tokens}" for m in models)
            return (
                "context",
                f"serves {have} tokens of context, task needs {req.min_context_tokens}",
            )
        models = roomy
    if req.min_tokens_per_s and not any(m.tokens_per_s >= req.min_tokens_per_s for m in models):
        have = join(_speed_text(m) for m in models)
        return "speed", f"serves {have}, task needs {num(req.min_tokens_per_s)} tokens/s"
    return None


def _workers(pool: PoolSnapshot, rows: Rows | None) -> list[Worker]:
    """The workers of the pool, or of ``rows`` only (for the per-worker checks)."""
    workers = pool.workers
    return workers if rows is None else [workers[r] for r in rows.tolist()]


def _wants_a_model(req: Requirements) -> bool:
    return bool(req.model or req.min_context_tokens or req.min_tokens_per_s)


class HardwareFilter(ColumnFilter):
    name = "hardware"
    remedy = "relax the hardware requirements"

    def static_key(self, ctx: RoutingContext) -> Hashable | None:
        req = ctx.task.requirements
        return (
            _gpus_needed(req),
            req.gpu_model,
            req.min_vram_gb,
            req.min_memory_gb,
            req.min_cpus,
            req.model,
            req.min_context_tokens,
            req.min_tokens_per_s,
            tuple(req.tools),
            _feature_key(req),
        )

    def failures_at(
        self, ctx: RoutingContext, pool: PoolSnapshot, rows: Rows | None
    ) -> dict[str, Mask]:
        req = ctx.task.requirements
        out: dict[str, Mask] = {}
        gpus = _gpus_needed(req)
        if gpus:
            gpu_count = at(pool.gpu_count, rows)
            out["no_gpu"] = gpu_count == 0
            if gpus > 1:
                out["gpu_count"] = gpu_count < gpus
        if req.gpu_model:
            wanted = req.gpu_model.lower()
            per_model = np.array([wanted in text for text in pool.gpu_models], dtype=np.bool_)
            out["gpu_model"] = ~per_model[at(pool.gpu_model_index, rows)]
        if req.min_vram_gb > 0:
            out["vram"] = at(pool.max_vram_gb, rows) < req.min_vram_gb
        if req.min_memory_gb > 0:
            out["memory"] = at(pool.memory_gb, rows) < req.min_memory_gb
        if req.min_cpus > 0:
            out["cpus"] = at(pool.cpus, rows) < req.min_cpus
        if req.model:
            out["model"] = ~pool.models.has_all((req.model.lower(),), rows)
        elif _wants_a_model(req):
            out["model"] = np.array(
                [not w.profile.hardware.models for w in _workers(pool, rows)], bool
            )
        if req.min_context_tokens or req.min_tokens_per_s:  # rare: a loop, cached per key
            codes = [served_model_problem(w.profile, req) for w in _workers(pool, rows)]
            for code in ("context", "speed"):
                out[code] = np.array([c is not None and c[0] == code for c in codes], bool)
        if req.tools:
            out["tools"] = ~pool.tools.has_all((t.lower() for t in req.tools), rows)
        if req.features:
            out["features"] = np.array(
                [
                    _feature_problem(req, w.profile.hardware) is not None
                    for w in _workers(pool, rows)
                ],
                dtype=np.bool_,
            )
        return out

    def candidates(self, ctx: RoutingContext, pool: PoolSnapshot) -> Rows | None:
        """The workers with a GPU, for a task that needs one."""
        if not _gpus_needed(ctx.task.requirements):
            return None
        found: Rows = pool.memo(("gpu-rows",), lambda: np.flatnonzero(pool.gpu_count > 0))
        return found

    def verdict(self, ctx: RoutingContext, worker: Worker) -> Verdict:
        req = ctx.task.requirements
        hw = worker.profile.hardware
        gpus = _gpus_needed(req)
        problem: tuple[str, str] | None = None
        if gpus and hw.gpu_count == 0:
            problem = ("no_gpu", f"has no GPU, task needs {gpus}")
        elif hw.gpu_count < gpus:
            problem = ("gpu_count", f"has {hw.gpu_count} GPUs, task needs {gpus}")
        elif req.gpu_model and req.gpu_model.lower() not in gpu_models_text(worker.profile):
            have = join(g.model for g in hw.gpus)
            problem = ("gpu_model", f"has GPU {have}, task needs a {req.gpu_model!r}")
        elif hw.max_vram_gb < req.min_vram_gb:
            problem = (
                "vram",
                f"has {num(hw.max_vram_gb)} GB VRAM, task needs {num(req.min_vram_gb)} GB",
            )
        elif hw.memory_gb < req.min_memory_gb:
            problem = (
                "memory",
                f"has {num(hw.memory_gb)} GB memory, task needs {num(req.min_memory_gb)} GB",
            )
        elif hw.cpus < req.min_cpus:
            problem = ("cpus", f"has {hw.cpus} CPUs, task needs {req.min_cpus}")
        elif req.model and req.model.lower() not in model_names(worker.profile):
            served = join(m.name for m in hw.models)
            problem = ("model", f"does not serve model {req.model!r} (serves: {served})")
        elif _wants_a_model(req) and not hw.models:
            problem = ("model", "serves no LLM")
        elif (served_problem := served_model_problem(worker.profile, req)) is not None:
            problem = served_problem
        else:
            missing = {t.lower() for t in req.tools} - tool_names(worker.profile)
            if missing:
                have = join(tool_names(worker.profile))
                problem = ("tools", f"lacks tools {join(missing)} (has: {have})")
            elif (lacking := _feature_problem(req, hw)) is not None:
                problem = ("features", lacking)
        if problem is None:
            return ok(self.name)
        return excluded(self.name, *problem)

    def describe(self, ctx: RoutingContext, codes: set[str]) -> str | None:
        req = ctx.task.requirements
        phrases = {
            "no_gpu": "has a GPU",
            "gpu_count": f"has {_gpus_needed(req)} GPUs",
            "gpu_model": f"has a {req.gpu_model} GPU",
            "vram": f"has {num(req.min_vram_gb)} GB VRAM",
            "memory": f"has {num(req.min_memory_gb)} GB memory",
            "cpus": f"has {req.min_cpus} CPUs",
            "model": f"serves {req.model or 'an LLM'}",
            "context": f"serves {req.model or 'a model'} with {req.min_context_tokens} tokens "
            "of context",
            "speed": f"serves {req.model or 'a model'} at {num(req.min_tokens_per_s)} tokens/s",
            "tools": f"has tools {join(req.tools)}",
            "features": "has " + ", ".join(f"{k}={v}" for k, v in req.features.items()),
        }
        parts = [text for code, text in phrases.items() if code in codes]
        return " and ".join(parts) or None
