"""Prometheus text format read back: scrape a ``/metrics`` page, and per-interval lag from
two scrapes of a cumulative histogram (which restarts at zero when its process does)."""

from __future__ import annotations

import math
import re
import urllib.request
from dataclasses import dataclass

_LE = re.compile(r'le="([^"]+)"')


def parse_metrics(text: str) -> dict[str, float]:
    """``{"name{labels}": value}`` for every sample line."""
    values: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            try:
                values[name] = float(value)
            except ValueError:
                continue
    return values


def scrape(url: str, timeout_s: float = 3.0) -> dict[str, float]:
    with urllib.request.urlopen(url, timeout=timeout_s) as response:
        return parse_metrics(response.read().decode())


@dataclass(frozen=True)
class HistogramState:
    count: float
    total: float
    buckets: tuple[tuple[float, float], ...]
    """(upper bound, cumulative count), ascending."""


def histogram(values: dict[str, float], name: str) -> HistogramState | None:
    count = values.get(f"{name}_count")
    total = values.get(f"{name}_sum")
    if count is None or total is None:
        return None
    buckets = []
    prefix = f"{name}_bucket{{"
    for key, value in values.items():
        if key.startswith(prefix):
            match = _LE.search(key)
            if match:
                buckets.append((float(match.group(1)), value))
    return HistogramState(count, total, tuple(sorted(buckets)))


@dataclass(frozen=True)
class WindowLag:
    observations: float
    mean_s: float
    p99_bound_s: float
    """Upper bound of the bucket holding the 99th percentile (``inf`` past the last)."""


def window_lag(before: HistogramState | None, after: HistogramState) -> WindowLag | None:
    """The lag of the observations made between two scrapes; a restart (counts fell) counts
    from zero. ``None`` when nothing was observed."""
    restarted = before is None or after.count < before.count
    base_count = 0.0 if restarted or before is None else before.count
    base_total = 0.0 if restarted or before is None else before.total
    base_buckets = {} if restarted or before is None else dict(before.buckets)
    n = after.count - base_count
    if n <= 0:
        return None
    target = 0.99 * n
    p99 = math.inf
    for bound, cumulative in after.buckets:
        if cumulative - base_buckets.get(bound, 0.0) >= target:
            p99 = bound
            break
    return WindowLag(n, (after.total - base_total) / n, p99)
