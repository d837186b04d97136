"""``python -m bench.e2e_worker worker ...``: the ``worldpool`` CLI with round trips counted.

Exactly ``python -m worldpool.cli.app``, plus :mod:`bench.roundtrip_counter` installed first, so
the end-to-end bench can say how many Redis round trips the worker spends per task.
"""

from __future__ import annotations

from bench import roundtrip_counter

if __name__ == "__main__":
    roundtrip_counter.install()
    from worldpool.cli.app import main

    main()
