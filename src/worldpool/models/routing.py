"""The router's explanation of a placement: verdicts, candidates, the decision."""

from __future__ import annotations

from pydantic import Field

from worldpool.models.base import Model, now_s


class Verdict(Model):
    """A filter's answer for one worker: ``ok`` or excluded with a code and a reason."""

    plugin: str
    ok: bool
    code: str = "ok"
    reason: str = ""


class CandidateReport(Model):
    worker_id: str
    region: str = ""
    feasible: bool
    verdicts: list[Verdict] = Field(default_factory=list, description="failing verdicts first")
    scores: dict[str, float] = Field(default_factory=dict, description="scorer -> 0..1")
    total: float = 0.0
    details: dict[str, str] = Field(
        default_factory=dict,
        description="scorer -> the inputs it scored, in words ('H100 at 95 tokens/s')",
    )


class RoutingDecision(Model):
    """Why a task went where it went (or why it could not go anywhere)."""

    task_id: str
    winner: str | None = None
    runner_up: str | None = None
    weights: dict[str, float] = Field(default_factory=dict)
    candidates: list[CandidateReport] = Field(
        default_factory=list, description="ranked feasible first; capped for big pools"
    )
    pool_size: int = 0
    feasible_count: int = 0
    excluded_by: dict[str, int] = Field(
        default_factory=dict, description="'plugin:code' -> number of workers it excluded"
    )
    omitted_candidates: int = Field(
        default=0, description="candidates evaluated but not listed (report cap)"
    )
    sampled: bool = Field(default=False, description="True if not every feasible worker scored")
    reasons: list[str] = Field(default_factory=list, description="why unschedulable")
    suggestion: str | None = Field(default=None, description="smallest change to make it fit")
    waiting_for_affinity: bool = False
    decided_at: float = Field(default_factory=now_s)
    duration_us: float = 0.0
    explained: bool = Field(
        default=True,
        description="False: a dispatch's lean record (winner and runner-up only); the full "
        "explanation is computed on demand (GET /api/v1/tasks/{id}/explain)",
    )

    @property
    def placeable(self) -> bool:
        return self.winner is not None
