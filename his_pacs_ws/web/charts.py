"""Server-rendered SVG pictures: no script, nothing to build, readable on a ward PC."""

from __future__ import annotations

from datetime import datetime, tzinfo
from html import escape

COLORS = {"OK": "#2e7d32", "FAULT": "#c62828"}


def _nice_max(value: float) -> float:
    if value <= 0:
        return 1
    for step in (1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000, 2000, 5000, 10000, 20000, 50000):
        if value <= step:
            return step
    return value


def calls_per_minute(series: dict, tz: tzinfo, labels: dict[str, str], width: int = 1180, height: int = 220) -> str:
    """Bars per minute, the faults stacked on the successes; an hour grid in hospital time."""
    minutes: list[datetime] = series["minutes"]
    ok, fault = series.get("OK", []), series.get("FAULT", [])
    left, right, top, bottom = 44, 8, 10, 26
    plot_w, plot_h = width - left - right, height - top - bottom
    n = max(len(minutes), 1)
    peak = _nice_max(max((a + b for a, b in zip(ok, fault)), default=0))
    step = plot_w / n

    def y(value: float) -> float:
        return top + plot_h - plot_h * value / peak

    paths = {"OK": [], "FAULT": []}
    for i in range(len(minutes)):
        x = left + step * i + step / 2
        if ok[i]:
            paths["OK"].append(f"M{x:.1f} {y(0):.1f}V{y(ok[i]):.1f}")
        if fault[i]:
            paths["FAULT"].append(f"M{x:.1f} {y(ok[i]):.1f}V{y(ok[i] + fault[i]):.1f}")
    stroke = max(step * 0.9, 0.6)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {width} {height}" '
             f'width="{width}" height="{height}" role="img" aria-label="{escape(labels["title"])}">',
             f'<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" fill="#fafafa" stroke="#ddd"/>']
    for fraction in (0.5, 1):
        value = peak * fraction
        parts.append(f'<line x1="{left}" x2="{left + plot_w}" y1="{y(value):.1f}" y2="{y(value):.1f}" stroke="#e0e0e0"/>'
                     f'<text x="{left - 4}" y="{y(value) + 4:.1f}" text-anchor="end" class="tick">{value:g}</text>')
    parts.append(f'<text x="{left - 4}" y="{y(0) + 4:.1f}" text-anchor="end" class="tick">0</text>')
    for i, minute in enumerate(minutes):
        local = minute.astimezone(tz)
        if local.minute == 0 and local.hour % 3 == 0:
            x = left + step * i
            parts.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{top}" y2="{top + plot_h}" stroke="#eee"/>'
                         f'<text x="{x:.1f}" y="{height - 8}" text-anchor="middle" class="tick">{local:%H:%M}</text>')
    for outcome, d in paths.items():
        if d:
            parts.append(f'<path d="{"".join(d)}" stroke="{COLORS[outcome]}" stroke-width="{stroke:.2f}" '
                         f'data-outcome="{outcome}"/>')
    parts.append(f'<g class="legend"><rect x="{left + 8}" y="{top + 6}" width="10" height="10" fill="{COLORS["OK"]}"/>'
                 f'<text x="{left + 22}" y="{top + 15}">{escape(labels["ok"])} {sum(ok)}</text>'
                 f'<rect x="{left + 128}" y="{top + 6}" width="10" height="10" fill="{COLORS["FAULT"]}"/>'
                 f'<text x="{left + 142}" y="{top + 15}">{escape(labels["fault"])} {sum(fault)}</text></g>')
    parts.append("</svg>")
    return "".join(parts)


def percentile_bars(rows: list[dict], labels: dict[str, str], width: int = 560) -> str:
    """One row per department: a bar to the median, a tick at p90, the numbers beside."""
    row_h, left, right, top = 26, 90, 150, 8
    height = top * 2 + row_h * max(len(rows), 1)
    peak = _nice_max(max((r["p90"] or 0 for r in rows), default=0))
    plot_w = width - left - right
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {width} {height}" '
             f'width="{width}" height="{height}" role="img" aria-label="{escape(labels["title"])}">']
    if not rows:
        parts.append(f'<text x="{width / 2}" y="{height / 2 + 4}" text-anchor="middle" class="tick">'
                     f'{escape(labels["empty"])}</text>')
    for i, row in enumerate(rows):
        y = top + row_h * i
        median, p90 = row["median"] or 0, row["p90"] or 0
        bar = plot_w * median / peak
        tick = left + plot_w * p90 / peak
        parts.append(
            f'<text x="{left - 6}" y="{y + 17}" text-anchor="end">{escape(str(row["department"]))}</text>'
            f'<rect x="{left}" y="{y + 5}" width="{bar:.1f}" height="14" fill="#1565c0" data-median="{median:.1f}"/>'
            f'<line x1="{tick:.1f}" x2="{tick:.1f}" y1="{y + 2}" y2="{y + 22}" stroke="#ef6c00" stroke-width="3" '
            f'data-p90="{p90:.1f}"/>'
            f'<text x="{left + plot_w + 8}" y="{y + 17}" class="tick">{escape(labels["median"])} {median:.0f} · '
            f'{escape(labels["p90"])} {p90:.0f} · n={row["count"]}</text>')
    parts.append("</svg>")
    return "".join(parts)
