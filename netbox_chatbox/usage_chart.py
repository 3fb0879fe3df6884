"""The usage chart, drawn on the server as SVG.

Why SVG from Python rather than a JavaScript chart library: the figures are already on the server,
a stacked bar chart is a few dozen rectangles, and inline SVG needs no vendored library, no CDN, no
build step and no script (it renders with JavaScript off, under a strict CSP, and in tests as text).
Hover titles give the exact value of each bar segment.
"""

from decimal import Decimal

from django.utils.html import escape
from django.utils.safestring import mark_safe

# Tabler's palette (NetBox's UI), readable in light and dark mode.
COLORS = ("#206bc4", "#2fb344", "#f76707", "#ae3ec9", "#d63939", "#17a2b8", "#f59f00", "#74b816")
WIDTH, HEIGHT = 960, 280
LEFT, RIGHT, TOP, BOTTOM = 70, 10, 10, 50


def _nice_max(value) -> float:
    """A round axis maximum ≥ value (1, 2, 2.5, 5 × 10^n)."""
    value = float(value)
    if value <= 0:
        return 1.0
    magnitude = (
        10 ** (len(str(int(value))) - 1) if value >= 1 else 10 ** -len(f"{value:.10f}".split(".")[1].rstrip("0"))
    )
    for step in (1, 2, 2.5, 5, 10):
        if step * magnitude >= value:
            return step * magnitude
    return 10 * magnitude


def _fmt(value, money=False) -> str:
    if money:
        return f"${float(value):,.4f}".rstrip("0").rstrip(".") if value else "$0"
    value = float(value)
    return f"{value:,.0f}" if value == int(value) else f"{value:,.2f}"


def render(periods, series: dict, label: str, money=False) -> str:
    """A stacked bar chart: one bar per period, one colour per model; ``series`` is {model: [values]}."""
    if not periods:
        return mark_safe('<p class="text-muted">No usage in this range.</p>')
    totals = [sum(Decimal(str(v[i])) for v in series.values()) for i in range(len(periods))]
    top = _nice_max(max(totals))
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    slot = plot_w / len(periods)
    bar = max(slot * 0.7, 1)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" class="chatbox-usage-chart" '
        f'role="img" aria-label="{escape(label)} per period" width="100%" style="max-height:{HEIGHT}px">'
    ]
    for i in range(5):  # grid and y axis
        y = TOP + plot_h - plot_h * i / 4
        parts.append(
            f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" stroke="currentColor" '
            f'stroke-opacity="0.15"/>'
        )
        parts.append(
            f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="11" fill="currentColor">'
            f"{escape(_fmt(top * i / 4, money))}</text>"
        )
    every = max(1, round(len(periods) / 12))
    for i, period in enumerate(periods):
        x = LEFT + slot * i + (slot - bar) / 2
        base = TOP + plot_h
        for n, (model, values) in enumerate(series.items()):
            value = values[i]
            if not value:
                continue
            h = plot_h * float(value) / top
            base -= h
            parts.append(
                f'<rect x="{x:.1f}" y="{base:.1f}" width="{bar:.1f}" height="{h:.1f}" '
                f'fill="{COLORS[n % len(COLORS)]}" data-model="{escape(model)}" data-value="{value}">'
                f"<title>{escape(period.isoformat())} · {escape(model)}: {escape(_fmt(value, money))}"
                f"</title></rect>"
            )
        if i % every == 0:
            parts.append(
                f'<text x="{LEFT + slot * i + slot / 2:.1f}" y="{TOP + plot_h + 16}" text-anchor="middle" '
                f'font-size="11" fill="currentColor">{escape(period.strftime("%b %d"))}</text>'
            )
    x = LEFT
    for n, model in enumerate(series):  # legend
        parts.append(f'<rect x="{x}" y="{HEIGHT - 18}" width="10" height="10" fill="{COLORS[n % len(COLORS)]}"/>')
        parts.append(f'<text x="{x + 14}" y="{HEIGHT - 9}" font-size="11" fill="currentColor">{escape(model)}</text>')
        x += 24 + 7 * len(model)
    parts.append("</svg>")
    return mark_safe("".join(parts))
