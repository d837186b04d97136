"""The dashboard screenshots kept in docs/img: saved as 256-colour palette PNGs.

A screenshot of the dashboard is flat colour and text, so a palette of 256 colours
(median cut, no dithering: text edges stay crisp) at full resolution keeps it legible at
about a third of the size of Chromium's 24-bit PNG (docs/img: 1.6 MB -> 0.6 MB).
``WORLDPOOL_SCREENSHOTS_DIR=docs/img`` makes the e2e tests keep theirs this way;
tests/e2e/test_screenshots.py checks that the kept ones are.
"""

from __future__ import annotations

import os
from pathlib import Path

COLOURS = 256


def compress(source: Path, dest: Path) -> None:
    """Write ``source`` (any PNG) to ``dest`` as an optimised palette PNG."""
    from PIL import Image  # Pillow: in the venv with matplotlib (the sim extra)

    with Image.open(source) as image:
        palette = image.convert("RGB").quantize(
            colors=COLOURS, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE
        )
    palette.save(dest, optimize=True)


def keep(path: Path, name: str) -> None:
    """Copy a screenshot into ``$WORLDPOOL_SCREENSHOTS_DIR`` (compressed), when set."""
    directory = os.environ.get("WORLDPOOL_SCREENSHOTS_DIR")
    if directory:
        Path(directory).mkdir(parents=True, exist_ok=True)
        compress(path, Path(directory) / name)
