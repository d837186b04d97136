"""Every Redis key worldpool uses, in one place.

All keys of one deployment share the prefix ``wp:{<namespace>}:``. The braces are a Redis
Cluster *hash tag*: every key of a deployment hashes to one slot, so the multi-key Lua
scripts stay legal on a cluster too (a deployment then lives on one shard; run several
namespaces to spread load). Two deployments on one Redis never see each other's keys.

=====================================  ============  =============================================
key                                    type          holds
=====================================  ============  =============================================
``workers``                            set           ids of every registered worker
``w:{worker}``                         hash          ``profile`` (JSON), ``state`` (JSON, without
                                                     ``running``/``last_heartbeat``), ``status``,
                                                     ``hb`` (server time of the last heartbeat),
                                                     ``max`` (slots)
``heartbeats``                         sorted set    worker id -> last heartbeat (server time)
``slots:{worker}``                     set           task ids holding a slot on the worker
``q:{worker}``                         stream        envelopes for the worker; group ``workers``,
                                                     consumer = worker id. Acked entries are
                                                     deleted, so the stream is exactly "sent and
                                                     not acknowledged"
``results``                            stream        fenced worker reports; group
                                                     ``orchestrators``; acked entries are deleted
``t:{task}``                           hash          ``data`` (record JSON without ``version``),
                                                     ``version``
``f:{task}``                           hash          the fencing copy of ``t:{task}``: ``attempt``,
                                                     ``worker``, ``terminal`` ("1"/"0"), written
                                                     with every task record write; all a
                                                     worker's scripts read of a task (its ACL
                                                     never reaches ``t:*``)
``tasks``                              sorted set    task ids by first-put order
``active``                             set           ids of tasks not yet terminal (the sweep's working set)
``deadlines``                          sorted set    task id -> next timeout deadline (tasks
                                                     with a timeout that can fire; the sweep's
                                                     working set)
``wft:{workflow}``                     sorted set    task ids of one workflow, first-put order
``wf:{workflow}``                      hash          ``data``, ``version`` (as tasks)
``workflows``                          sorted set    workflow ids by first-put order
``order``                              string        counter that orders the index sets above
``pending``                            sorted set    task id -> (100 - priority) * 1e12 + order
``queued``                             stream        ``t``: id of a task its create queued
                                                     (capped): wakes the dispatchers
``idem:{key}``                         string        idempotency key -> task id (SET NX)
``blob:{digest}``                      string        artifact bytes (SET PX = TTL)
``events``                             stream        event log, capped at ``event_log_max`` exactly
``dead``                               stream        dead letters, capped the same way
``dead:{worker}``                      stream        the dead letters a worker wrote itself
                                                     (refused envelopes, poison entries of
                                                     its stream), capped the same way; the
                                                     worker is the key, not a field
``lease:{name}``                       string        lease holder (SET NX PX)
``seen:{worker}/{task}:{attempt}``     string        the worker started this attempt (SET NX
                                                     PX = the envelope's validity): no replay
``refused:{worker}``                   string        why the orchestrator refused the worker
``handlers:offered``                   set           every handler name a worker ever offered
``reply:{client}``                     stream        the final records of a client's tasks
                                                     (``d`` record JSON, ``v`` version), pushed
                                                     by the write that ends each; capped, and
                                                     expires when its client is gone
=====================================  ============  =============================================
"""

from __future__ import annotations

from dataclasses import dataclass

WORKER_GROUP = "workers"
"""The consumer group on every worker stream (consumer name = worker id)."""

RESULTS_GROUP = "orchestrators"
"""The consumer group on the results stream (consumer name = orchestrator replica)."""


@dataclass(frozen=True, slots=True)
class Keys:
    """Key names for one namespace. Build with ``Keys.for_namespace("prod")``."""

    prefix: str

    @classmethod
    def for_namespace(cls, namespace: str) -> Keys:
        return cls(prefix=f"wp:{{{namespace}}}:")

    # registry
    @property
    def workers(self) -> str:
        return self.prefix + "workers"

    def worker(self, worker_id: str) -> str:
        return f"{self.prefix}w:{worker_id}"

    @property
    def heartbeats(self) -> str:
        return self.prefix + "heartbeats"

    def slots(self, worker_id: str) -> str:
        return f"{self.prefix}slots:{worker_id}"

    # delivery
    def queue(self, worker_id: str) -> str:
        return f"{self.prefix}q:{worker_id}"

    @property
    def results(self) -> str:
        return self.prefix + "results"

    # state
    def task(self, task_id: str) -> str:
        return f"{self.prefix}t:{task_id}"

    def fence(self, task_id: str) -> str:
        """hash: the fencing copy (attempt, worker, terminal) of ``t:{task}``, apart from it
        so that a worker's Redis user, which fences its reports on it, never reads a record."""
        return f"{self.prefix}f:{task_id}"

    @property
    def tasks(self) -> str:
        return self.prefix + "tasks"

    @property
    def active(self) -> str:
        """set of ids of tasks that are not terminal (maintained after each put)."""
        return self.prefix + "active"

    @property
    def deadlines(self) -> str:
        """sorted set: task id -> the next time one of its timeouts can fire."""
        return self.prefix + "deadlines"

    def workflow_tasks(self, workflow_id: str) -> str:
        return f"{self.prefix}wft:{workflow_id}"

    def workflow(self, workflow_id: str) -> str:
        return f"{self.prefix}wf:{workflow_id}"

    @property
    def workflows(self) -> str:
        return self.prefix + "workflows"

    @property
    def order(self) -> str:
        return self.prefix + "order"

    @property
    def pending(self) -> str:
        return self.prefix + "pending"

    @property
    def queued(self) -> str:
        """stream: ids of tasks their create queued (what wakes a dispatcher elsewhere)."""
        return self.prefix + "queued"

    @property
    def epoch(self) -> str:
        """hash: the deployment epoch (id, mark, created_at, lost_from, lost_at)."""
        return self.prefix + "epoch"

    def effect(self, key: str) -> str:
        """hash: one entry of the once-per-key effect ledger."""
        return f"{self.prefix}fx:{key}"

    def idempotency(self, key: str) -> str:
        return f"{self.prefix}idem:{key}"

    # artifacts, events, dead letters, leases
    def blob(self, digest: str) -> str:
        return f"{self.prefix}blob:{digest}"

    @property
    def events(self) -> str:
        return self.prefix + "events"

    def reply(self, client: str) -> str:
        return f"{self.prefix}reply:{client}"

    @property
    def dead(self) -> str:
        return self.prefix + "dead"

    def worker_dead(self, worker_id: str) -> str:
        """stream: the dead letters worker ``worker_id`` wrote itself (its only way to
        write one: its ACL never reaches ``dead``)."""
        return f"{self.prefix}dead:{worker_id}"

    def lease(self, name: str) -> str:
        return f"{self.prefix}lease:{name}"

    # pool changes
    @property
    def pool_changed(self) -> str:
        """sorted set: worker id -> sequence number of its latest change (scripts/_pool.lua)."""
        return self.prefix + "pool:changed"

    # trust (issue 13): "/" cannot be in a worker id, so ``seen:{worker}/*`` is exactly
    # one worker's claims in an ACL pattern.
    def seen(self, worker_id: str, task_id: str, attempt: int) -> str:
        return f"{self.prefix}seen:{worker_id}/{task_id}:{attempt}"

    def refused(self, worker_id: str) -> str:
        return f"{self.prefix}refused:{worker_id}"

    # clients (issue 11)
    @property
    def handlers_offered(self) -> str:
        """set: every handler name a worker has offered at registration (never shrinks):
        a submit naming none of them is refused with a did-you-mean."""
        return self.prefix + "handlers:offered"
