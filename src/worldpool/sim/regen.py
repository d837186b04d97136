"""Regenerate every table and plot of docs/simulation.md (one command).

    python -m worldpool.sim.regen     # = python -m worldpool.sim.evidence --write-docs

The evidence sweep (:mod:`worldpool.sim.evidence`): JSON and Pareto SVGs into
docs/img, the generated section of docs/simulation.md rewritten between its markers.
"""

from __future__ import annotations

import sys

from worldpool.sim.evidence import main

if __name__ == "__main__":
    main(["--write-docs", *sys.argv[1:]])
