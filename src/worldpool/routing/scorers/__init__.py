"""The built-in scorers, one plugin per module; each returns scores in [0, 1] that the engine weights (see :mod:`worldpool.routing.interface`)."""
