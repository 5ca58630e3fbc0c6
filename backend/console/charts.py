"""Server-rendered SVG charts for the console: a sensor series with the failure risk overlaid.

No JavaScript and no chart library: the page stays light on a phone in the field, and the
chart is readable by screen readers through its title and description.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from html import escape

WIDTH = 640
HEIGHT = 220
_PAD_LEFT, _PAD_RIGHT, _PAD_TOP, _PAD_BOTTOM = 48, 44, 12, 28


@dataclass(frozen=True)
class Point:
    at: datetime
    value: float


def _finite(points: Sequence[Point]) -> list[Point]:
    return [p for p in points if math.isfinite(p.value)]


def _scale(lo: float, hi: float, size: float, invert: bool) -> tuple[float, float]:
    span = hi - lo if hi > lo else 1.0
    factor = size / span
    return (-factor, hi * factor) if invert else (factor, -lo * factor)


def _path(points: Sequence[Point], x_of: dict[datetime, float], y: tuple[float, float]) -> str:
    """An SVG path; a gap longer than three median steps breaks the line (offline is unknown)."""
    if not points:
        return ""
    steps = sorted((b.at - a.at).total_seconds() for a, b in itertools.pairwise(points))
    gap_s = 3 * steps[len(steps) // 2] if steps else math.inf
    commands: list[str] = []
    previous: Point | None = None
    for point in points:
        move = previous is None or (point.at - previous.at).total_seconds() > gap_s
        py = _PAD_TOP + y[0] * point.value + y[1]
        commands.append(f"{'M' if move else 'L'}{x_of[point.at]:.1f},{py:.1f}")
        previous = point
    return " ".join(commands)


def sensor_with_risk_svg(
    title: str, unit: str, sensor: Sequence[Point], risk: Sequence[Point]
) -> str:
    """An SVG line chart of ``sensor`` (left axis) with ``risk`` (0-1, right axis) overlaid."""
    sensor = _finite(sensor)
    risk = _finite(risk)
    label = escape(f"{title} ({unit})" if unit else title)
    if not sensor and not risk:
        return f'<p class="empty">No {label} readings or predictions in this period.</p>'
    times = sorted({p.at for p in [*sensor, *risk]})
    t0, t1 = times[0].timestamp(), times[-1].timestamp()
    plot_w = WIDTH - _PAD_LEFT - _PAD_RIGHT
    plot_h = HEIGHT - _PAD_TOP - _PAD_BOTTOM
    t_span = t1 - t0 if t1 > t0 else 1.0
    x_of = {t: _PAD_LEFT + (t.timestamp() - t0) / t_span * plot_w for t in times}
    values = [p.value for p in sensor] or [0.0, 1.0]
    lo, hi = min(values), max(values)
    sensor_y = _scale(lo, hi, plot_h, invert=True)
    risk_y = _scale(0.0, 1.0, plot_h, invert=True)
    right_x = WIDTH - _PAD_RIGHT + 4
    last_risk = f"{risk[-1].value:.0%}" if risk else "none"
    description = (
        f"{label} from {times[0]:%Y-%m-%d %H:%M} to {times[-1]:%Y-%m-%d %H:%M} UTC, "
        f"between {lo:.4g} and {hi:.4g}; latest failure risk {last_risk}."
    )
    return "\n".join(
        [
            f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
            f'aria-labelledby="chart-title chart-desc" preserveAspectRatio="none">',
            f'<title id="chart-title">{label} with failure risk</title>',
            f'<desc id="chart-desc">{escape(description)}</desc>',
            f'<rect x="{_PAD_LEFT}" y="{_PAD_TOP}" width="{plot_w}" height="{plot_h}" '
            'class="plot"/>',
            f'<text x="4" y="{_PAD_TOP + 10}" class="axis">{hi:.4g}</text>',
            f'<text x="4" y="{_PAD_TOP + plot_h}" class="axis">{lo:.4g}</text>',
            f'<text x="{right_x}" y="{_PAD_TOP + 10}" class="axis risk">100%</text>',
            f'<text x="{right_x}" y="{_PAD_TOP + plot_h}" class="axis risk">0%</text>',
            f'<text x="{_PAD_LEFT}" y="{HEIGHT - 8}" class="axis">{times[0]:%m-%d %H:%M}</text>',
            f'<text x="{WIDTH - _PAD_RIGHT}" y="{HEIGHT - 8}" class="axis" '
            f'text-anchor="end">{times[-1]:%m-%d %H:%M}</text>',
            f'<path d="{_path(sensor, x_of, sensor_y)}" class="line sensor"/>',
            f'<path d="{_path(risk, x_of, risk_y)}" class="line risk"/>',
            "</svg>",
        ]
    )
