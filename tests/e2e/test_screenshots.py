"""The dashboard screenshots in docs/img are the three widths the fit test shoots (phone
390, laptop 1,280, wide 1,920 px) and stay compressed (palette PNGs, see screenshots.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.screenshots import COLOURS, compress

IMG = Path(__file__).resolve().parents[2] / "docs" / "img"
WIDTHS = {"dashboard-phone.png": 390, "dashboard-laptop.png": 1280, "dashboard-wide.png": 1920}
WIDTHS["dashboard-wide-running.png"] = 1920
BUDGET_BYTES = 200_000  # each; Chromium's 24-bit PNGs of the same views were up to 330 kB

Image = pytest.importorskip("PIL.Image")


@pytest.mark.parametrize("name", sorted(p.name for p in IMG.glob("dashboard-*.png")))
def test_kept_screenshots_are_compressed(name: str) -> None:
    path = IMG / name
    with Image.open(path) as image:
        assert image.mode == "P", f"{name}: keep it with tests/e2e/screenshots.py:compress"
        assert len(image.getcolors(COLOURS) or []) <= COLOURS
        if name in WIDTHS:
            assert image.width == WIDTHS[name]
    assert path.stat().st_size <= BUDGET_BYTES


def test_every_width_is_kept() -> None:
    assert all((IMG / name).exists() for name in WIDTHS)


def test_compress_keeps_the_size_and_shrinks_a_screenshot(tmp_path: Path) -> None:
    source = IMG / "dashboard-workers.png"
    rgb = tmp_path / "rgb.png"
    with Image.open(source) as image:
        image.convert("RGB").save(rgb)
    compress(rgb, tmp_path / "small.png")
    with Image.open(tmp_path / "small.png") as small, Image.open(rgb) as big:
        assert small.size == big.size and small.mode == "P"
    assert (tmp_path / "small.png").stat().st_size < rgb.stat().st_size / 1.5
