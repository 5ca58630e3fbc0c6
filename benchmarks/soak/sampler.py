"""Every few seconds: readings stored and their rate, ingest lag and pending window, RSS by
process role. A sample is taken whatever is down (a failed read leaves ``None``)."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import psycopg

from benchmarks.soak.metrics_text import HistogramState, histogram, scrape, window_lag
from benchmarks.soak.processes import sample_rss

LAG = "fleetcare_ingest_end_to_end_lag_seconds"


@dataclass
class Sample:
    t: float
    phase: str
    stored: int | None = None
    rate: float | None = None
    lag_mean_s: float | None = None
    lag_p99_s: float | None = None
    pending: float | None = None
    rss: dict[str, tuple[int, float]] = field(default_factory=dict)


def stored_rows(database_url: str) -> int | None:
    try:
        with psycopg.connect(database_url, connect_timeout=3) as conn:
            conn.execute("SET statement_timeout = '10s'")
            row = conn.execute("SELECT count(*) FROM telemetry").fetchone()
            return None if row is None else int(row[0])
    except psycopg.Error:
        return None


class Sampler:
    def __init__(
        self,
        database_url: str,
        metrics_url: str,
        roots: Callable[[], Mapping[str, int | None]],
        up_pid: int | None,
        started: float,
    ) -> None:
        self.database_url = database_url
        self.metrics_url = metrics_url
        self.roots = roots
        self.up_pid = up_pid
        self.started = started
        self.samples: list[Sample] = []
        self._last_hist: HistogramState | None = None
        self._last_stored: tuple[float, int] | None = None

    def sample(self, phase: str) -> Sample:
        now = time.monotonic()
        s = Sample(t=now - self.started, phase=phase)
        s.stored = stored_rows(self.database_url)
        if s.stored is not None:
            if self._last_stored is not None and now > self._last_stored[0]:
                s.rate = (s.stored - self._last_stored[1]) / (now - self._last_stored[0])
            self._last_stored = (now, s.stored)
        try:
            values = scrape(self.metrics_url)
        except OSError:
            values = {}
        state = histogram(values, LAG)
        if state is not None:
            lag = window_lag(self._last_hist, state)
            if lag is not None:
                s.lag_mean_s = lag.mean_s
                s.lag_p99_s = lag.p99_bound_s
            self._last_hist = state
        s.pending = values.get("fleetcare_ingest_pending_messages")
        s.rss = sample_rss(self.roots(), self.up_pid, pss_roles=frozenset({"postgres"}))
        self.samples.append(s)
        return s
