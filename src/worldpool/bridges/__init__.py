"""Other engines' fleets joining the pool: :mod:`.celery` (a Celery fleet as a worldpool
worker, and a Celery router that places tasks with worldpool's router)."""
