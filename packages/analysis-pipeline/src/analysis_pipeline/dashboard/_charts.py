"""Charts drawn on the server as inline SVG: no script, no build step, no CDN.

Every label is escaped here (and the result is then marked safe for the templates), so a model
name or project name cannot inject markup into the page.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date

from markupsafe import Markup, escape

__all__ = ["bar_chart", "line_chart"]

_PALETTE = ("#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#4b5563")
_W, _H, _PAD_L, _PAD_B, _PAD_T = 720, 220, 56, 28, 12


def _frame(body: list[str], title: str, y_max: float, y_format: str) -> Markup:
    plot_h = _H - _PAD_B - _PAD_T
    grid = []
    for i in range(5):
        y = _PAD_T + plot_h - plot_h * i / 4
        value = y_max * i / 4
        grid.append(
            f'<line x1="{_PAD_L}" y1="{y:.1f}" x2="{_W - 8}" y2="{y:.1f}" class="grid"/>'
            f'<text x="{_PAD_L - 6}" y="{y + 4:.1f}" text-anchor="end" class="tick">'
            f"{escape(format(value, y_format))}</text>"
        )
    return Markup(  # noqa: S704 (every interpolated label above is escaped)
        f'<svg class="chart" viewBox="0 0 {_W} {_H + 24}" role="img" '
        f'aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg">'
        f"<title>{escape(title)}</title>{''.join(grid)}{''.join(body)}</svg>"
    )


def line_chart(
    series: Mapping[str, Sequence[tuple[date, float]]], *, title: str, y_format: str = ".2f"
) -> Markup:
    """One line per series over days (points joined in date order), with a legend.

    Args:
        series: Name to (day, value) points.
        title: Accessible title of the chart.
        y_format: Format of the axis values.

    Returns:
        An ``<svg>`` element, safe to embed.
    """
    days = sorted({d for points in series.values() for d, _ in points})
    values = [v for points in series.values() for _, v in points]
    if not days:
        return Markup('<p class="empty">No data in this period.</p>')
    y_max = max([*values, 0.0]) or 1.0
    plot_w, plot_h = _W - _PAD_L - 16, _H - _PAD_B - _PAD_T
    step = plot_w / max(len(days) - 1, 1)
    x_of = {d: _PAD_L + 4 + i * step for i, d in enumerate(days)}
    body: list[str] = []
    for n, (name, points) in enumerate(sorted(series.items())):
        colour = _PALETTE[n % len(_PALETTE)]
        coords = [(x_of[d], _PAD_T + plot_h - plot_h * v / y_max) for d, v in sorted(points)]
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y in coords)
        body.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"/>')
        body.extend(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{colour}"/>' for x, y in coords)
        body.append(
            f'<text x="{_PAD_L + 4 + 170 * n}" y="{_H + 18}" fill="{colour}" class="legend">'
            f"■ {escape(name)}</text>"
        )
    for d in (days[0], days[-1]):
        body.append(
            f'<text x="{x_of[d]:.1f}" y="{_H - 8}" text-anchor="middle" class="tick">'
            f"{d.isoformat()}</text>"
        )
    return _frame(body, title, y_max, y_format)


def bar_chart(
    bars: Sequence[tuple[str, float, bool]], *, title: str, y_format: str = ".4f"
) -> Markup:
    """One bar per label; a flagged bar (e.g. holding unpriced calls) is hatched and marked.

    Args:
        bars: (label, value, flagged) in display order.
        title: Accessible title of the chart.
        y_format: Format of the axis values.

    Returns:
        An ``<svg>`` element, safe to embed.
    """
    if not bars:
        return Markup('<p class="empty">No data in this period.</p>')
    y_max = max(v for _, v, _ in bars) or 1.0
    plot_w, plot_h = _W - _PAD_L - 16, _H - _PAD_B - _PAD_T
    slot = plot_w / len(bars)
    width = max(slot * 0.7, 1.0)
    body: list[str] = []
    for i, (label, value, flagged) in enumerate(bars):
        h = plot_h * value / y_max
        x = _PAD_L + 4 + i * slot
        cls = "bar flagged" if flagged else "bar"
        note = " (has unpriced calls)" if flagged else ""
        body.append(
            f'<rect x="{x:.1f}" y="{_PAD_T + plot_h - h:.1f}" width="{width:.1f}" '
            f'height="{h:.1f}" class="{cls}"><title>{escape(label)}: '
            f"{escape(format(value, y_format))}{note}</title></rect>"
        )
        if flagged:
            body.append(
                f'<text x="{x + width / 2:.1f}" y="{_PAD_T + plot_h - h - 3:.1f}" '
                f'text-anchor="middle" class="flag">!</text>'
            )
    for i in sorted({0, len(bars) - 1}):
        body.append(
            f'<text x="{_PAD_L + 4 + i * slot + width / 2:.1f}" y="{_H - 8}" '
            f'text-anchor="middle" class="tick">{escape(bars[i][0])}</text>'
        )
    return _frame(body, title, y_max, y_format)
