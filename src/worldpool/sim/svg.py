"""Pareto plots as plain SVG (no plotting library needed): p95 against cost per class."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

PANEL_W, PANEL_H, MARGIN = 300, 240, 44
COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f")


def pareto(points: Sequence[tuple[str, float, float]]) -> set[str]:
    """Names of the points no other point beats on both x and y (lower is better)."""
    front = set()
    for name, x, y in points:
        if not any((a <= x and b <= y) and (a < x or b < y) for _, a, b in points):
            front.add(name)
    return front


def _ticks(lo: float, hi: float) -> list[float]:
    span = hi - lo or 1.0
    return [lo + span * k / 4 for k in range(5)]


def _fmt(v: float) -> str:
    return f"{v:,.0f}" if abs(v) >= 100 else f"{v:.1f}"


def panel(title: str, points: Sequence[tuple[str, float, float]], colour: dict[str, str]) -> str:
    """One panel (x: p95 s, y: cost $), frontier points ringed and joined."""
    xs, ys = [p[1] for p in points], [p[2] for p in points]
    x0, x1 = min(xs) * 0.97, max(xs) * 1.03
    y0, y1 = min(ys) * 0.97, max(ys) * 1.03
    w, h = PANEL_W - 2 * MARGIN, PANEL_H - 2 * MARGIN

    def px(x: float) -> float:
        return MARGIN + (x - x0) / ((x1 - x0) or 1.0) * w

    def py(y: float) -> float:
        return PANEL_H - MARGIN - (y - y0) / ((y1 - y0) or 1.0) * h

    out = [
        f'<text x="{PANEL_W / 2}" y="16" text-anchor="middle" font-size="12">{escape(title)}</text>'
    ]
    out.append(
        f'<rect x="{MARGIN}" y="{MARGIN}" width="{w}" height="{h}" fill="none" stroke="#999"/>'
    )
    for t in _ticks(x0, x1):
        out.append(
            f'<text x="{px(t):.1f}" y="{PANEL_H - MARGIN + 14}" font-size="9" '
            f'text-anchor="middle">{_fmt(t)}</text>'
        )
    for t in _ticks(y0, y1):
        out.append(
            f'<text x="{MARGIN - 4}" y="{py(t) + 3:.1f}" font-size="9" '
            f'text-anchor="end">{_fmt(t)}</text>'
        )
    out.append(
        f'<text x="{PANEL_W / 2}" y="{PANEL_H - 8}" font-size="10" text-anchor="middle">'
        "p95 completion (s)</text>"
    )
    front = sorted((p for p in points if p[0] in pareto(points)), key=lambda p: p[1])
    if len(front) > 1:
        path = " ".join(f"{px(x):.1f},{py(y):.1f}" for _, x, y in front)
        out.append(f'<polyline points="{path}" fill="none" stroke="#aaa" stroke-dasharray="3,3"/>')
    for name, x, y in points:
        c = colour.get(name, "#333")
        r = 5 if name in pareto(points) else 3.5
        out.append(f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="{r}" fill="{c}"/>')
    return "\n".join(out)


def pareto_svg(title: str, panels: dict[str, Sequence[tuple[str, float, float]]]) -> str:
    """A row of panels (one per task class) with a shared legend; y is total cost ($)."""
    names = list(dict.fromkeys(n for pts in panels.values() for n, _, _ in pts))
    colour = {n: COLOURS[k % len(COLOURS)] for k, n in enumerate(names)}
    width = PANEL_W * max(1, len(panels))
    height = PANEL_H + 40
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'font-family="sans-serif">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        f'<text x="8" y="14" font-size="11">{escape(title)} (y: total cost $, larger dots: '
        "Pareto frontier)</text>",
    ]
    for k, (cls, pts) in enumerate(panels.items()):
        parts.append(f'<g transform="translate({k * PANEL_W},20)">{panel(cls, pts, colour)}</g>')
    for k, n in enumerate(names):
        x = 10 + k * (width - 20) / max(1, len(names))
        parts.append(f'<circle cx="{x:.0f}" cy="{height - 10}" r="4" fill="{colour[n]}"/>')
        parts.append(f'<text x="{x + 7:.0f}" y="{height - 6}" font-size="10">{escape(n)}</text>')
    parts.append("</svg>")
    return "\n".join(parts) + "\n"
