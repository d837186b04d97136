"""A tiny login service: the demo's sample project (it has a real bug)."""
