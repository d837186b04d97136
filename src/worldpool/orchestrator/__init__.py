"""The orchestrator: the supervisor of tasks and workflows, composed of parts.

:mod:`.core` is :class:`Orchestrator`, the public face; the parts it composes each own
their state: dispatch (routing and sending), results (applying workers' reports), the
sweep (liveness and timeouts) and workflow advancement. Lifecycle policy (what a failure
means) is :mod:`worldpool.lifecycle`, pure and shared with the backends.
"""

from worldpool.orchestrator.core import Orchestrator

__all__ = ["Orchestrator"]
