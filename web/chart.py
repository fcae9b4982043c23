"""Time-series charts as inline SVG: server-drawn, no script, every point carrying its value.

A thread's comment count and its last activity, one point per observation.
Each point is a ``<circle>`` with ``data-at`` / ``data-value`` and a
``<title>`` (the browser's own tooltip), so the chart is readable without
JavaScript and checkable by a test.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from html import escape

WIDTH, HEIGHT = 720, 220
_LEFT, _RIGHT, _TOP, _BOTTOM = 96, 16, 16, 36


@dataclass(frozen=True)
class Point:
    at: str  # ISO 8601 time of the observation (x)
    value: float  # y
    label: str  # what the tooltip says about the value


def _epoch(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def _scale(lo: float, hi: float, size: float, flip: bool) -> tuple[float, float]:
    span = hi - lo or 1.0
    if flip:
        return -size / span, size + size * lo / span
    return size / span, -size * lo / span


def line_chart(points: list[Point], *, title: str, y_label: str, y_is_time: bool = False) -> str:
    """An SVG line chart of ``points`` (oldest first); an empty one says so."""
    name = escape(title)
    if not points:
        return f'<p class="empty">{name}: no observations</p>'
    xs = [_epoch(p.at) for p in points]
    ys = [p.value for p in points]
    plot_w, plot_h = WIDTH - _LEFT - _RIGHT, HEIGHT - _TOP - _BOTTOM
    x_lo, x_hi = min(xs), max(xs)
    y_lo, y_hi = (min(ys), max(ys)) if y_is_time else (0.0, max(max(ys), 1.0))
    ax, bx = _scale(x_lo, x_hi, plot_w, flip=False)
    ay, by = _scale(y_lo, y_hi, plot_h, flip=True)

    def pos(x: float, y: float) -> tuple[float, float]:
        # One point (or all at one time) sits in the middle rather than on the axis.
        px = _LEFT + (ax * x + bx if x_hi > x_lo else plot_w / 2)
        py = _TOP + (ay * y + by if y_hi > y_lo else plot_h / 2)
        return round(px, 1), round(py, 1)

    coords = [pos(x, y) for x, y in zip(xs, ys, strict=True)]
    parts = [(f'<svg class="chart" role="img" aria-label="{name}" viewBox="0 0 {WIDTH} {HEIGHT}" '
             f'width="{WIDTH}" height="{HEIGHT}" xmlns="http://www.w3.org/2000/svg">'),
             f"<title>{name}</title>",
             f'<line class="axis" x1="{_LEFT}" y1="{_TOP + plot_h}" x2="{_LEFT + plot_w}" y2="{_TOP + plot_h}"/>',
             f'<line class="axis" x1="{_LEFT}" y1="{_TOP}" x2="{_LEFT}" y2="{_TOP + plot_h}"/>']
    y_ticks = [(y_lo, _tick_label(y_lo, y_is_time)), (y_hi, _tick_label(y_hi, y_is_time))]
    for value, text in y_ticks:
        _, py = pos(x_lo, value)
        parts.append(f'<text class="tick" x="{_LEFT - 6}" y="{py + 4}" text-anchor="end">{escape(text)}</text>')
    parts.append(f'<text class="tick" x="{_LEFT}" y="{HEIGHT - 8}">{escape(points[0].at[:16])}</text>')
    parts.append(f'<text class="tick" x="{_LEFT + plot_w}" y="{HEIGHT - 8}" text-anchor="end">'
                 f'{escape(points[-1].at[:16])}</text>')
    parts.append(f'<text class="axis-label" x="12" y="{_TOP + plot_h / 2}" '
                 f'transform="rotate(-90 12 {_TOP + plot_h / 2})" text-anchor="middle">{escape(y_label)}</text>')
    parts.append('<polyline class="series" fill="none" points="'
                 + " ".join(f"{x},{y}" for x, y in coords) + '"/>')
    for point, (x, y) in zip(points, coords, strict=True):
        parts.append(f'<circle class="point" cx="{x}" cy="{y}" r="3" data-at="{escape(point.at)}" '
                     f'data-value="{escape(point.label)}"><title>{escape(point.at)}: {escape(point.label)}</title>'
                     "</circle>")
    parts.append("</svg>")
    return "".join(parts)


def _tick_label(value: float, is_time: bool) -> str:
    if is_time:
        return datetime.fromtimestamp(value, UTC).strftime("%m-%d %H:%MZ")  # UTC, like every time shown
    return f"{value:g}"


def thread_charts(observations: list[dict[str, object]]) -> tuple[str, str]:
    """(comment count over time, last activity over time) for a thread's observations."""
    counts = [Point(str(o["observed_at"]), float(o["comment_count"]), str(o["comment_count"]))  # type: ignore[arg-type]
              for o in observations if o.get("comment_count") is not None]
    activity = [Point(str(o["observed_at"]), _epoch(str(o["last_activity_at"])), str(o["last_activity_at"]))
                for o in observations if o.get("last_activity_at")]
    return (line_chart(counts, title="Comments over time", y_label="comments"),
            line_chart(activity, title="Last activity over time", y_label="last activity", y_is_time=True))
