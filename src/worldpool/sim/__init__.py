"""The policy simulator: a discrete-event simulation of a pool and a workload that drives the real :class:`~worldpool.routing.Router` (``worldpool simulate``)."""
