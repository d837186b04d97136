"""One router per resource: tasks, workflows, workers, artifacts, system (health, metrics)."""
