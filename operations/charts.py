"""Small server-side SVG charts: no JavaScript, no CDN, readable without a chart library.

Each data point is an element with class `point` and `data-value` (tests and browser tests
count them); labels are escaped by `format_html`.
"""

from __future__ import annotations

from collections.abc import Sequence

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe

PALETTE = ("#417690", "#e08e0b", "#79aec8", "#ba2121", "#5b8a3a", "#8e6bb5")
_FONT = 'font-family="sans-serif" font-size="10" fill="#555"'


def _n(value: float) -> str:
    return f"{value:.1f}"


def _fmt(value: float) -> str:
    if value >= 10_000:
        return f"{value / 1000:,.0f}k"
    return f"{value:,.1f}".removesuffix(".0")


def _empty(width: int, height: int, label: str) -> SafeString:
    return format_html(
        '<svg class="chart empty" viewBox="0 0 {} {}" width="100%" role="img" aria-label="{}">'
        '<text x="10" y="20" ' + _FONT + ">no data yet</text></svg>",
        width,
        height,
        label,
    )


def columns(
    points: Sequence[tuple[str, float]], *, label: str, width: int = 640, height: int = 180
) -> SafeString:
    """Vertical bars over time (events per day)."""
    if not points or not any(v for _, v in points):
        return _empty(width, height, label)
    top = max(v for _, v in points)
    left, bottom, plot_h = 40, 20, height - 30
    step = (width - left - 5) / len(points)
    every = max(1, len(points) // 8)
    bars = []
    for i, (name, value) in enumerate(points):
        h = plot_h * value / top
        x = left + i * step
        bars.append(
            format_html(
                '<rect class="point bar" data-label="{}" data-value="{}" x="{}" y="{}" '
                'width="{}" height="{}" fill="{}"><title>{}: {}</title></rect>',
                name,
                value,
                _n(x + 1),
                _n(height - bottom - h),
                _n(max(step - 2, 1)),
                _n(h),
                PALETTE[0],
                name,
                f"{value:,}",
            )
        )
        if i % every == 0:
            bars.append(
                format_html(
                    '<text x="{}" y="{}" ' + _FONT + ">{}</text>",
                    _n(x),
                    height - 5,
                    name,
                )
            )
    return format_html(
        '<svg class="chart columns" viewBox="0 0 {} {}" width="100%" role="img" '
        'aria-label="{}"><text x="2" y="12" ' + _FONT + ">{}</text>"
        '<line x1="{}" y1="{}" x2="{}" y2="{}" stroke="#ccc"/>{}</svg>',
        width,
        height,
        label,
        _fmt(top),
        left,
        height - bottom,
        width,
        height - bottom,
        mark_safe("".join(bars)),  # every part built by format_html
    )


def hbars(
    items: Sequence[tuple[str, float]], *, label: str, width: int = 420, unit: str = ""
) -> SafeString:
    """Horizontal bars for a distribution (status, warehouse, country)."""
    if not items:
        return _empty(width, 40, label)
    top = max(v for _, v in items) or 1
    row, left = 18, 130
    height = row * len(items) + 4
    parts = format_html_join(
        "",
        '<text x="{}" y="{}" text-anchor="end" ' + _FONT + ">{}</text>"
        '<rect class="point bar" data-label="{}" data-value="{}" x="{}" y="{}" width="{}" '
        'height="{}" fill="{}"><title>{}: {}</title></rect>'
        '<text x="{}" y="{}" ' + _FONT + ">{}</text>",
        (
            (
                left - 4,
                i * row + 13,
                name,
                name,
                value,
                left,
                i * row + 3,
                _n((width - left - 60) * value / top),
                row - 5,
                PALETTE[i % len(PALETTE)],
                name,
                f"{value:,}{unit}",
                _n(left + (width - left - 60) * value / top + 4),
                i * row + 13,
                f"{_fmt(value)}{unit}",
            )
            for i, (name, value) in enumerate(items)
        ),
    )
    return format_html(
        '<svg class="chart hbars" viewBox="0 0 {} {}" width="100%" role="img" aria-label="{}">'
        "{}</svg>",
        width,
        height,
        label,
        parts,
    )


def lines(
    labels: Sequence[str],
    series: Sequence[tuple[str, Sequence[float | None]]],
    *,
    label: str,
    unit: str = "h",
    width: int = 640,
    height: int = 200,
) -> SafeString:
    """Lines over time (weekly p50/p90); gaps where a week has no samples."""
    values = [v for _, vs in series for v in vs if v is not None]
    if not labels or not values:
        return _empty(width, height, label)
    top = max(values) or 1
    left, bottom, right = 40, 20, 70
    plot_h, plot_w = height - 30, width - left - right
    step = plot_w / max(len(labels) - 1, 1)

    def xy(i: int, v: float) -> tuple[float, float]:
        return left + i * step, height - bottom - plot_h * v / top

    parts = [
        format_html('<text x="2" y="12" ' + _FONT + ">{}{}</text>", _fmt(top), unit),
        format_html(
            '<line x1="{}" y1="{}" x2="{}" y2="{}" stroke="#ccc"/>',
            left,
            height - bottom,
            left + plot_w,
            height - bottom,
        ),
    ]
    every = max(1, len(labels) // 6)
    for i, name in enumerate(labels):
        if i % every == 0:
            parts.append(
                format_html(
                    '<text x="{}" y="{}" ' + _FONT + ">{}</text>",
                    _n(xy(i, 0)[0] - 10),
                    height - 5,
                    name,
                )
            )
    for n, (name, vs) in enumerate(series):
        color = PALETTE[n % len(PALETTE)]
        path = " ".join(
            f"{'M' if i == 0 or vs[i - 1] is None else 'L'}{x:.1f},{y:.1f}"
            for i, v in enumerate(vs)
            if v is not None
            for x, y in [xy(i, v)]
        )
        parts.append(
            format_html('<path d="{}" fill="none" stroke="{}" stroke-width="2"/>', path, color)
        )
        for i, v in enumerate(vs):
            if v is None:
                continue
            x, y = xy(i, v)
            parts.append(
                format_html(
                    '<circle class="point" data-series="{}" data-label="{}" data-value="{}" '
                    'cx="{}" cy="{}" r="3" fill="{}"><title>{} {}: {}{}</title></circle>',
                    name,
                    labels[i],
                    v,
                    _n(x),
                    _n(y),
                    color,
                    name,
                    labels[i],
                    v,
                    unit,
                )
            )
        parts.append(
            format_html(
                '<text x="{}" y="{}" fill="{}" font-family="sans-serif" font-size="11">{}</text>',
                left + plot_w + 6,
                16 + 14 * n,
                color,
                name,
            )
        )
    return format_html(
        '<svg class="chart lines" viewBox="0 0 {} {}" width="100%" role="img" aria-label="{}">'
        "{}</svg>",
        width,
        height,
        label,
        mark_safe("".join(parts)),  # every part built by format_html
    )
