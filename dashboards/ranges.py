"""Choosing raw telemetry, the hourly or the daily rollup by the width of the time range.

A telemetry panel is one SQL statement of three branches joined by ``UNION ALL``; each
branch carries a guard on the dashboard's time range. Grafana expands ``$__timeFrom()`` and
``$__timeTo()`` into literals, so PostgreSQL folds each guard to a constant when it plans
the statement and runs only the branch whose guard is true (a ``One-Time Filter: false``
branch costs nothing). The same SQL works on TimescaleDB (continuous aggregates) and on plain
PostgreSQL (rollup tables): both have ``telemetry_hourly`` and ``telemetry_daily`` with the
same columns.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["DEVICE", "FLEET", "SPAN", "Guards", "raw_only"]

SPAN = "($__timeTo()::timestamptz - $__timeFrom()::timestamptz)"


@dataclass(frozen=True)
class Guards:
    """The three range conditions for rollup switching at ``raw_max`` and ``hourly_max``."""

    raw_max: str
    hourly_max: str = "7 days"

    @property
    def raw(self) -> str:
        return f"{SPAN} <= interval '{self.raw_max}'"

    @property
    def hourly(self) -> str:
        return f"{SPAN} > interval '{self.raw_max}' AND {SPAN} <= interval '{self.hourly_max}'"

    @property
    def daily(self) -> str:
        return f"{SPAN} > interval '{self.hourly_max}'"


#: One device's series: raw rows up to 6 hours (an index range scan of one device).
DEVICE = Guards("6 hours")
#: The whole fleet: raw rows only up to 1 hour and the hourly rollup up to 2 days (every
#: device's rows are read).
FLEET = Guards("1 hour", "2 days")

_HOURLY = re.compile(
    re.escape(SPAN) + r" > interval '[^']+' AND " + re.escape(SPAN) + r" <= interval '[^']+'"
)
_DAILY = re.compile(re.escape(SPAN) + r" > interval '[^']+'")
_RAW = re.compile(re.escape(SPAN) + r" <= interval '[^']+'")


def raw_only(sql: str) -> str:
    """``sql`` with its raw-telemetry branch forced on and the rollup branches off (the
    baseline the rollups are measured against)."""
    return _RAW.sub("true", _DAILY.sub("false", _HOURLY.sub("false", sql)))
