"""Workers: the runtime that registers, heartbeats, consumes and runs handlers.

:mod:`.runtime` is :class:`WorkerRuntime`; :mod:`.execution` runs one task and reports
how it ended; :mod:`.handlers` what a handler sees
(:class:`TaskContext`) and a worker's name -> handler table; :mod:`.hardware` detection of
what the machine really has and checks of what a profile claims.
"""

from worldpool.worker.handlers import HandlerTable, TaskContext
from worldpool.worker.runtime import WorkerRuntime

__all__ = ["HandlerTable", "TaskContext", "WorkerRuntime"]
