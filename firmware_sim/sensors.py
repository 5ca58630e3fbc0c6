"""What real sensors do to true values: noise, drift, spikes, stuck readings, gaps.

Applied block by block, in place, to ``[devices, steps]`` float32 arrays:

1. Gaussian noise (``MetricSpec.noise`` + ``noise_rel`` × value), drawn by inverse-CDF
   lookup from 16-bit uniform integers (exact quantiles of N(0, 1) at 65,536 levels;
   ~5x faster than ``standard_normal`` in float32).
2. Drift: a share of sensors wander off linearly (``rate`` per day, up to a few % of
   range a year).
3. Saturation at the measuring range, quantisation to the sensor's resolution and the
   standstill cut-off (speed, flow, current and power below a threshold read 0).
4. Single lost values (NaN; ``None`` on the wire).
5. Spikes: isolated outliers (electrical interference), 2–6x the value or a jump of
   30–100 % of the range, saturated and quantised like any reading.
6. Stuck sensors (the last reading repeats for hours to days) and whole-device dropouts.

Every spike, stuck episode, dropout and drifting sensor is recorded as ground truth.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from statistics import NormalDist

import numpy as np

from firmware_sim.arraytypes import F32, F64, I64
from firmware_sim.catalogue import MachineSpec
from firmware_sim.config import SensorImpairments

_NO_DRIFT = frozenset({"speed_rpm"})


def normal_table() -> F32:
    """The 65,536 mid-point quantiles of N(0, 1), for noise by table lookup."""
    dist = NormalDist()
    probs = (np.arange(65_536, dtype=np.float64) + 0.5) / 65_536
    return np.array([dist.inv_cdf(float(p)) for p in probs], dtype=np.float32)


@dataclass(frozen=True)
class SensorFault:
    """One impairment, as ground truth. Times are absolute steps; ``end`` is exclusive."""

    device: int
    metric: str
    kind: str
    start: int
    end: int
    value: float


@dataclass
class SensorImpairer:
    """Applies :class:`SensorImpairments` to one machine type's blocks."""

    spec: MachineSpec
    settings: SensorImpairments
    steps_per_day: int
    drift_per_day: F64
    stuck: list[tuple[int, int, int, int]]
    dropouts: list[tuple[int, int, int]]
    table: F32
    last_value: F32
    faults: list[SensorFault] = field(default_factory=list)
    _tables: dict[int, F32] = field(default_factory=dict)
    _spike_parts: list[tuple[I64, int, I64, F32]] = field(default_factory=list)

    @classmethod
    def plan(
        cls,
        g: np.random.Generator,
        spec: MachineSpec,
        settings: SensorImpairments,
        n: int,
        days: int,
        steps_per_day: int,
        table: F32,
    ) -> SensorImpairer:
        """Draw which sensors drift; stuck episodes and dropouts are drawn day by day."""
        m = len(spec.metrics)
        ranges = np.array([s.high - s.low for s in spec.metrics])
        drifting = g.random((n, m)) < settings.drift_share
        for j, metric in enumerate(spec.metrics):
            if metric.name in _NO_DRIFT:
                drifting[:, j] = False
        rate = g.normal(0.0, 0.02, (n, m)) * ranges / 365.0
        drift = np.where(drifting, rate, 0.0)
        total = days * steps_per_day
        impairer = cls(
            spec,
            settings,
            steps_per_day,
            drift,
            [],
            [],
            table,
            np.full((m, n), np.nan, dtype=np.float32),
        )
        for row, col in zip(*np.nonzero(drifting), strict=True):
            impairer.faults.append(
                SensorFault(
                    int(row), spec.metrics[col].name, "drift", 0, total, float(drift[row, col])
                )
            )
        return impairer

    def _scaled_table(self, j: int) -> F32:
        """The noise table in units of metric ``j``'s resolution (cached)."""
        cached = self._tables.get(j)
        if cached is None:
            metric = self.spec.metrics[j]
            cached = self.table * np.float32(metric.noise / metric.resolution)
            self._tables[j] = cached
        return cached

    def new_episodes(self, day: int, n: int, g: np.random.Generator) -> None:
        """Draw the stuck episodes and dropouts that start on ``day``."""
        spd = self.steps_per_day
        t0 = day * spd
        m = len(self.spec.metrics)
        n_stuck = g.poisson(self.settings.stuck_per_device_year / 365.0, n)
        for i in np.flatnonzero(n_stuck):
            for _ in range(int(n_stuck[i])):
                start = t0 + int(g.integers(1, spd))
                length = max(1, int(g.lognormal(np.log(6 * spd / 24), 1.0)))
                episode = (int(i), int(g.integers(m)), start, start + length)
                self.stuck.append(episode)
                self.faults.append(
                    SensorFault(
                        episode[0],
                        self.spec.metrics[episode[1]].name,
                        "stuck",
                        episode[2],
                        episode[3],
                        np.nan,
                    )
                )
        n_drop = g.poisson(self.settings.dropout_per_device_year / 365.0, n)
        for i in np.flatnonzero(n_drop):
            for _ in range(int(n_drop[i])):
                start = t0 + int(g.integers(0, spd))
                length = max(1, int(g.uniform(5, 120) * spd / 1440))
                self.dropouts.append((int(i), start, start + length))
                self.faults.append(
                    SensorFault(int(i), "*", "dropout", start, start + length, np.nan)
                )
        self.stuck = [ep for ep in self.stuck if ep[3] > t0]
        self.dropouts = [ep for ep in self.dropouts if ep[2] > t0]

    def apply(self, values: dict[str, F32], day: int, g: np.random.Generator) -> None:
        """Impair one day's values of every device in place (catalogue order)."""
        n = next(iter(values.values())).shape[0]
        self.new_episodes(day, n, g)
        self.apply_rows(values, day, 0, g)
        self.finish(values, day, g)

    def apply_rows(
        self, values: dict[str, F32], day: int, first_row: int, g: np.random.Generator
    ) -> None:
        """Noise, drift, range, resolution, cut-off and lost values for a slice of
        devices starting at ``first_row``. Works in units of each sensor's resolution until
        the last step, so noise, saturation and quantisation cost one pass each.
        """
        settings = self.settings
        bits = g.bit_generator
        for j, metric in enumerate(self.spec.metrics):
            v = values[metric.name]
            rows = slice(first_row, first_row + v.shape[0])
            np.multiply(v, np.float32(1.0 / metric.resolution), out=v)
            if settings.noise:
                index = bits.random_raw((v.size + 3) // 4).view(np.uint16)[: v.size]
                if metric.noise_rel > 0:
                    noise = np.take(self.table, index.reshape(v.shape))
                    scale = v * np.float32(metric.noise_rel)
                    scale += np.float32(metric.noise / metric.resolution)
                    noise *= scale
                else:
                    noise = np.take(self._scaled_table(j), index.reshape(v.shape))
                v += noise
            drift = self.drift_per_day[rows, j]
            drifting = np.flatnonzero(drift)
            if drifting.size:
                offset = drift[drifting] * (day + 0.5) / metric.resolution
                v[drifting] += offset.astype(np.float32)[:, None]
            low, high = metric.low / metric.resolution, metric.high / metric.resolution
            np.clip(v, np.float32(low), np.float32(high), out=v)
            np.rint(v, out=v)
            np.multiply(v, np.float32(metric.resolution), out=v)
            if metric.cutoff > 0:
                v[v < np.float32(metric.cutoff)] = 0.0
            if settings.missing_rate > 0:
                lost = int(g.binomial(v.size, settings.missing_rate))
                if lost:
                    v.reshape(-1)[g.integers(0, v.size, lost)] = np.nan

    def finish(self, values: dict[str, F32], day: int, g: np.random.Generator) -> None:
        """Spikes, stuck sensors and dropouts over the whole day (after :meth:`apply_rows`)."""
        t0 = day * self.steps_per_day
        if self.settings.spike_rate > 0:
            for j, metric in enumerate(self.spec.metrics):
                v = values[metric.name]
                count = int(g.poisson(self.settings.spike_rate * v.size))
                if count:
                    self._spikes(v, j, count, t0, g)
        self._stick(values, t0, self.steps_per_day)
        self._drop(values, t0, self.steps_per_day)
        for j, metric in enumerate(self.spec.metrics):
            self.last_value[j] = values[metric.name][:, -1]

    def _spikes(self, v: F32, j: int, count: int, t0: int, g: np.random.Generator) -> None:
        """Outliers on top of the (already quantised) readings, saturated at the range."""
        metric = self.spec.metrics[j]
        flat = g.integers(0, v.size, count)
        rows, cols = np.divmod(flat, v.shape[1])
        before = v.reshape(-1)[flat]
        jump = np.where(
            g.random(count) < 0.5,
            np.abs(before) * g.uniform(1.0, 5.0, count),
            g.uniform(0.3, 1.0, count) * (metric.high - metric.low),
        )
        res = metric.resolution
        after = np.clip(np.rint((before + jump) / res) * res, metric.low, metric.high)
        v.reshape(-1)[flat] = after.astype(np.float32)
        self._spike_parts.append((rows, j, cols + t0, (after - before).astype(np.float32)))

    def all_faults(self) -> list[SensorFault]:
        """Every recorded impairment: drift, stuck, dropout and spike."""
        out = list(self.faults)
        for rows, j, steps, sizes in self._spike_parts:
            name = self.spec.metrics[j].name
            for r, t, size in zip(rows.tolist(), steps.tolist(), sizes.tolist(), strict=True):
                out.append(SensorFault(r, name, "spike", t, t + 1, size))
        return out

    def _stick(self, values: dict[str, F32], t0: int, steps: int) -> None:
        for i, j, start, end in self._overlapping(self.stuck, t0, steps):
            v = values[self.spec.metrics[j].name]
            s, e = max(start - t0, 0), min(end - t0, steps)
            if start >= t0:
                held = v[i, s - 1] if s > 0 else self.last_value[j, i]
            else:
                held = self.last_value[j, i]
            v[i, s:e] = held

    def _drop(self, values: dict[str, F32], t0: int, steps: int) -> None:
        for i, start, end in self._overlapping_drop(t0, steps):
            s, e = max(start - t0, 0), min(end - t0, steps)
            for metric in self.spec.metrics:
                values[metric.name][i, s:e] = np.nan

    def _overlapping(
        self, episodes: list[tuple[int, int, int, int]], t0: int, steps: int
    ) -> list[tuple[int, int, int, int]]:
        return [ep for ep in episodes if ep[2] < t0 + steps and ep[3] > t0]

    def _overlapping_drop(self, t0: int, steps: int) -> list[tuple[int, int, int]]:
        return [ep for ep in self.dropouts if ep[1] < t0 + steps and ep[2] > t0]
