"""Server-rendered SVG charts (no scripts, no external assets): risk over time and a reasons waterfall.

The SVG is built from numbers and escaped labels only and uses presentation attributes (no
``style``), so the console's content security policy needs no exception for it. Each chart has
a ``<title>`` and a ``<desc>`` for screen readers, and the pages show the same figures as text.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

from markupsafe import Markup

STAGE_COLOURS = {"intake": "#1f6feb", "midterm": "#8250df", "release": "#bf5700"}
UP, DOWN, NEUTRAL = "#c62828", "#2e7d32", "#57606a"


@dataclass(frozen=True)
class Point:
    """One assessment on the risk history chart."""

    when: str  # ISO date
    probability: float
    stage: str
    label: str  # e.g. "中期评估 2024-09-01: 23%"


@dataclass(frozen=True)
class Step:
    """One bar of the waterfall: a label and its change in probability (points of 0..1)."""

    label: str
    delta: float


def _svg(width: int, height: int, title: str, desc: str, body: list[str]) -> Markup:
    head = (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" role="img" '
        f'class="chart" preserveAspectRatio="xMinYMin meet"><title>{escape(title)}</title>'
        f"<desc>{escape(desc)}</desc>"
    )
    return Markup(head + "".join(body) + "</svg>")  # every label above is escaped


def risk_history(points: Sequence[Point], *, title: str, cutoffs: Sequence[float] = ()) -> Markup:
    """A line of the probability at each assessment date, one dot per assessment coloured by stage."""
    width, height, left, right, top, bottom = 480, 220, 40, 40, 12, 36
    pts = sorted(points, key=lambda p: p.when)
    top_value = max([0.1, *(p.probability for p in pts), *cutoffs])
    y_max = min(1.0, math.ceil(top_value * 10) / 10)

    def x(i: int) -> float:
        return left + (width - left - right) * (0.5 if len(pts) == 1 else i / (len(pts) - 1))

    def y(p: float) -> float:
        return top + (height - top - bottom) * (1 - p / y_max)

    body = []
    for k in range(0, 11):  # horizontal grid every 10 points (or 5 when the scale is short)
        value = k * (0.05 if y_max <= 0.5 else 0.1)
        if value > y_max + 1e-9:
            break
        body.append(
            f'<line x1="{left}" x2="{width - right}" y1="{y(value):.1f}" y2="{y(value):.1f}" '
            f'stroke="#d0d7de" stroke-width="1"/>'
            f'<text x="{left - 6}" y="{y(value) + 4:.1f}" text-anchor="end" font-size="12" '
            f'fill="#57606a">{value:.0%}</text>'
        )
    for c in cutoffs:
        body.append(
            f'<line x1="{left}" x2="{width - right}" y1="{y(c):.1f}" y2="{y(c):.1f}" stroke="#bf8700" '
            f'stroke-dasharray="4 3" stroke-width="1"/>'
        )
    if len(pts) > 1:
        path = " ".join(f"{x(i):.1f},{y(p.probability):.1f}" for i, p in enumerate(pts))
        body.append(f'<polyline points="{path}" fill="none" stroke="#57606a" stroke-width="2"/>')
    every = math.ceil(len(pts) / 4)  # at most five dates under the axis, the last always
    for i, p in enumerate(pts):
        colour = STAGE_COLOURS.get(p.stage, NEUTRAL)
        body.append(
            f'<circle cx="{x(i):.1f}" cy="{y(p.probability):.1f}" r="5" fill="{colour}">'
            f"<title>{escape(p.label)}</title></circle>"
        )
        if i % every == 0 or i == len(pts) - 1:
            body.append(
                f'<text x="{x(i):.1f}" y="{height - bottom + 18}" text-anchor="middle" font-size="12" '
                f'fill="#24292f">{escape(p.when)}</text>'
            )
    desc = "; ".join(p.label for p in pts)
    return _svg(width, height, title, desc, body)


def waterfall(
    *,
    start_label: str,
    start: float,
    steps: Sequence[Step],
    end_label: str,
    end: float,
    title: str,
    points_unit: str = " pp",
) -> Markup:
    """Waterfall from ``start`` (a typical person's risk) through ``steps`` to ``end``, one row per step.

    Each row has its label above its bar, so that the chart stays legible when a phone shrinks
    it. Bars that raise the risk are red, those that lower it green; the first and last bars (the
    typical and this person's risk) are grey and start at zero. Values are probabilities in 0..1; a step's
    size is written in percentage points with ``points_unit`` (" pp", "个百分点").
    """
    rows = [(start_label, 0.0, start, NEUTRAL)]
    level = start
    for s in steps:
        rows.append((s.label, level, level + s.delta, UP if s.delta > 0 else DOWN))
        level += s.delta
    rows.append((end_label, 0.0, end, NEUTRAL))
    width, left, value_w, row_h, bar_h = 460, 4, 64, 38, 14
    scale_max = max(0.05, *(max(a, b) for _, a, b, _ in rows))
    plot_w = width - left - value_w

    def px(v: float) -> float:
        return left + plot_w * max(0.0, v) / scale_max

    body = []
    for i, (label, a, b, colour) in enumerate(rows):
        y0 = 4 + i * row_h
        lo, hi = sorted((a, b))
        shown = f"{b:.1%}" if colour == NEUTRAL else f"{b - a:+.1%}".replace("%", points_unit)
        body.append(
            f'<text x="{left}" y="{y0 + 12}" font-size="12" fill="#24292f">{escape(_short(label))}</text>'
            f'<rect x="{px(lo):.1f}" y="{y0 + 17}" width="{max(1.5, px(hi) - px(lo)):.1f}" height="{bar_h}" '
            f'rx="2" fill="{colour}"><title>{escape(label)}: {escape(shown)}</title></rect>'
            f'<text x="{px(hi) + 4:.1f}" y="{y0 + 28}" font-size="11" fill="#24292f">{escape(shown)}</text>'
        )
    height = 8 + len(rows) * row_h
    desc = "; ".join(f"{label}: {b - a:+.1%}" if c != NEUTRAL else f"{label}: {b:.1%}" for label, a, b, c in rows)
    return _svg(width, height, title, desc, body)


def _short(label: str, limit: int = 36) -> str:
    return label if len(label) <= limit else label[: limit - 1] + "…"
