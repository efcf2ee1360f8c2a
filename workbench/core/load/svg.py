"""Line charts as inline SVG (no script, no network asset): what a load report's HTML draws."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

_W, _H, _LEFT, _BOTTOM, _TOP, _RIGHT = 640, 240, 56, 32, 12, 12


@dataclass(frozen=True, slots=True)
class Line:
    name: str
    color: str
    points: Sequence[tuple[float, float | None]]
    """(x, y); a ``None`` y breaks the line."""


def _nice(top: float) -> float:
    """A round upper bound at or above ``top`` (1, 2 or 5 times a power of ten)."""
    if top <= 0:
        return 1.0
    power = 10.0 ** math.floor(math.log10(top))
    return next(float(step * power) for step in (1, 2, 5, 10) if step * power >= top)


def _label(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 10 or value == 0 else f"{value:.2g}"


def line_chart(title: str, lines: Sequence[Line], x_label: str, y_label: str) -> str:
    """An SVG chart of ``lines`` over a shared x axis, with a legend; empty lines draw an empty frame."""
    xs = [x for line in lines for x, y in line.points if y is not None]
    ys = [y for line in lines for _, y in line.points if y is not None]
    x0, x1 = (min(xs), max(xs)) if xs else (0.0, 1.0)
    if x1 <= x0:
        x1 = x0 + 1
    y1 = _nice(max(ys, default=0.0))
    plot_w, plot_h = _W - _LEFT - _RIGHT, _H - _TOP - _BOTTOM

    def px(x: float) -> float:
        return _LEFT + (x - x0) / (x1 - x0) * plot_w

    def py(y: float) -> float:
        return _TOP + plot_h - y / y1 * plot_h

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {_W} {_H}" width="{_W}" height="{_H}" '
             f'role="img" aria-label="{escape(title)}">', f"<title>{escape(title)}</title>",
             f'<rect x="{_LEFT}" y="{_TOP}" width="{plot_w}" height="{plot_h}" fill="none" stroke="#ccc"/>']
    for i in range(5):
        value = y1 * i / 4
        parts.append(f'<line x1="{_LEFT}" x2="{_LEFT + plot_w}" y1="{py(value):.1f}" y2="{py(value):.1f}" '
                     f'stroke="#eee"/><text x="{_LEFT - 4}" y="{py(value) + 4:.1f}" font-size="10" '
                     f'text-anchor="end">{_label(value)}</text>')
    for i in range(5):
        value = x0 + (x1 - x0) * i / 4
        parts.append(f'<text x="{px(value):.1f}" y="{_TOP + plot_h + 14}" font-size="10" '
                     f'text-anchor="middle">{_label(value)}</text>')
    parts.append(f'<text x="{_LEFT + plot_w / 2}" y="{_H - 4}" font-size="11" text-anchor="middle">'
                 f"{escape(x_label)}</text>")
    parts.append(f'<text x="12" y="{_TOP + plot_h / 2}" font-size="11" text-anchor="middle" '
                 f'transform="rotate(-90 12 {_TOP + plot_h / 2})">{escape(y_label)}</text>')
    for n, line in enumerate(lines):
        runs: list[list[str]] = [[]]
        for x, y in line.points:
            if y is None:
                runs.append([])
            else:
                runs[-1].append(f"{px(x):.1f},{py(y):.1f}")
        for run in runs:
            if len(run) == 1:
                cx, cy = run[0].split(",")
                parts.append(f'<circle cx="{cx}" cy="{cy}" r="2" fill="{line.color}"/>')
            elif run:
                parts.append(f'<polyline fill="none" stroke="{line.color}" stroke-width="1.5" '
                             f'points="{" ".join(run)}"/>')
        parts.append(f'<text x="{_LEFT + 8 + 110 * n}" y="{_TOP + 12}" font-size="11" fill="{line.color}">'
                     f"■ {escape(line.name)}</text>")
    parts.append("</svg>")
    return "".join(parts)
