"""The chaos checker: what was promised against what happened, from sources outside the
system under test.

* the **journal**: every submission the submitter got an acknowledgement for, written to a
  file as it was acknowledged (:class:`Journal`);
* the **side-effect ledger**: one line per effect applied, written by the handlers
  (``tests/e2e/handlers.py:effect``, through ``ctx.once``) to a file of their own;
* the **final records**, read back from Redis at the end.

:func:`check` says what was **lost** (acknowledged, no record), **stuck** (not finished by
the deadline), **duplicated** (an effect applied more than once) and **missing effects**
(a task that succeeded without its effect in the ledger).
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from worldpool.backends.base import Backend
from worldpool.models import TaskSpec, TaskStatus
from worldpool.orchestrator.core import Orchestrator


class Journal:
    """The submitter's journal of acknowledged submissions (one id per line)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    async def submit(self, submitter: Orchestrator, spec: TaskSpec) -> str:
        record = await submitter.submit(spec)
        with self.path.open("a") as journal:
            journal.write(record.id + "\n")
        return record.id

    def ids(self) -> list[str]:
        return self.path.read_text().split() if self.path.exists() else []


def ledger(path: Path) -> Counter[str]:
    """Effects applied per task id, from the handlers' ledger file."""
    if not path.exists():
        return Counter()
    return Counter(line.split()[0] for line in path.read_text().splitlines() if line)


@dataclass
class Verdict:
    acknowledged: int
    lost: list[str] = field(default_factory=list)
    stuck: list[str] = field(default_factory=list)
    duplicated: dict[str, int] = field(default_factory=dict)
    missing_effects: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not (self.lost or self.stuck or self.duplicated or self.missing_effects)

    def __str__(self) -> str:
        return (
            f"{self.acknowledged} acknowledged: {len(self.lost)} lost {self.lost[:5]}, "
            f"{len(self.stuck)} stuck {self.stuck[:5]}, {len(self.duplicated)} duplicated "
            f"{dict(list(self.duplicated.items())[:5])}, {len(self.missing_effects)} without "
            f"their effect {self.missing_effects[:5]}, {len(self.failed)} failed"
        )


async def check(
    client: Backend, journal: Journal, effects: Path, timeout_s: float = 60.0
) -> Verdict:
    """Wait (up to ``timeout_s``) for every acknowledged task to end, then judge."""
    ids = journal.ids()
    deadline = time.monotonic() + timeout_s
    while True:
        records = await client.get_tasks(ids)
        if all(r is None or r.status.terminal for r in records):
            break
        if time.monotonic() > deadline:
            break
        await asyncio.sleep(0.2)
    applied = ledger(effects)
    verdict = Verdict(acknowledged=len(ids))
    for task_id, record in zip(ids, records, strict=True):
        if record is None:
            verdict.lost.append(task_id)
        elif not record.status.terminal:
            verdict.stuck.append(f"{task_id}:{record.status.value}")
        elif record.status is TaskStatus.SUCCEEDED and applied[task_id] == 0:
            verdict.missing_effects.append(task_id)
        elif record.status is not TaskStatus.SUCCEEDED:
            verdict.failed.append(f"{task_id}:{record.status.value}")
    verdict.duplicated = {t: n for t, n in applied.items() if n > 1}
    return verdict
