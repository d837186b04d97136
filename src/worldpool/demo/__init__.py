"""The seed scenario as a runnable demo (``worldpool demo``)."""
