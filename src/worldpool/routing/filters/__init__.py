"""The built-in filters, one plugin per module; each says which workers cannot run a task and why (see :mod:`worldpool.routing.interface`)."""
