"""The orchestrator: the supervisor of tasks and workflows, composed of parts.

:mod:`.core` is :class:`Orchestrator`, the public face, which builds its parts and gives
each what it uses:

* :mod:`.dispatch` (routing pending tasks and sending them; creating new tasks),
  :mod:`.results` (applying workers' reports), :mod:`.sweep` (liveness and timeouts) and
  :mod:`.workflows` (DAG advancement): the loops' work;
* :mod:`.transitions`: how every part changes a task (the compare-and-set write, its
  events from :mod:`.events`, its follow-ups), shared by the four above;
* state with one owner each: :mod:`.records` (the record cache), :mod:`.pending` (the
  pending queue and whether it is known empty), :mod:`.pool` (the pool snapshot and sticky
  placements), :mod:`.signals` (change notification), :mod:`.clock` (the backend clock
  as the hot paths read it); :mod:`.coalesce` batches concurrent creates.

Lifecycle policy (what a failure means) is :mod:`worldpool.lifecycle`, pure and shared
with the backends.
"""

from worldpool.orchestrator.core import Orchestrator

__all__ = ["Orchestrator"]
