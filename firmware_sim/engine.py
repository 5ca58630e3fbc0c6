"""The simulation engine: one machine type's devices, one day at a time, vectorised.

A day is computed for all devices of a type at once (``[devices, steps]`` arrays). Wear
state advances in stress-hours; devices with an event that day (a failure, a random
failure, a maintenance visit) are then replayed one by one from the event on, so the
failure minute is exact and the readings after it show the stopped machine. Everything
random comes from streams keyed by (type, day) or (type, device): the same config gives
the same days, whatever reads them.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta

import numpy as np

from firmware_sim.alarms import trip_code
from firmware_sim.arraytypes import F32, F64, Bool
from firmware_sim.climate import REGIONS, AmbientModel, region_index
from firmware_sim.config import SimConfig
from firmware_sim.engagement import Engagement
from firmware_sim.fleet import Fleet
from firmware_sim.groundtruth import (
    BreakdownTicket,
    DailyDegradation,
    DeviceEvent,
    FailureRecord,
    GroundTruthLog,
    MaintenanceRecord,
    OnsetRecord,
)
from firmware_sim.machine import BlockInputs
from firmware_sim.machines import MACHINE_TYPES, machine_model
from firmware_sim.maintenance import corrective, draw_quality, pm_interval_days, preventive
from firmware_sim.schedule import build_schedule
from firmware_sim.seeds import Stream, rng
from firmware_sim.sensors import SensorImpairer, normal_table
from firmware_sim.service import pm_duration_h, repair_timing
from firmware_sim.wear import degradation, draw_random_left, initial_state


@dataclass
class DayBlock:
    """One day of one machine type: the readings as a device would take them.

    Attributes:
        values: metric name → ``[devices, steps]`` float32, NaN where a value is missing.
        running: whether each device ran in each step (not part of the telemetry).
    """

    machine_type: str
    day: int
    first_step: int
    device_ids: tuple[str, ...]
    values: dict[str, F32]
    running: Bool
    load: F32

    def device_readings(self, i: int, lo: int, hi: int) -> list[dict[str, float | None]]:
        """Device ``i``'s readings of steps ``[lo, hi)`` (of the simulation, within this
        day) as the device SDK takes them: one dict per step, a missing value ``None``."""
        names = list(self.values)
        t0 = self.first_step
        columns = [self.values[n][i, lo - t0 : hi - t0].tolist() for n in names]
        return [
            {n: None if math.isnan(v) else v for n, v in zip(names, row, strict=True)}
            for row in zip(*columns, strict=True)
        ]


_CHUNK = 64


class TypeSimulator:
    """All devices of one machine type."""

    def __init__(
        self,
        config: SimConfig,
        fleet: Fleet,
        machine_type: str,
        engagement: Engagement,
        log: GroundTruthLog,
        table: F32,
    ) -> None:
        self.config = config
        self.type_index = MACHINE_TYPES.index(machine_type)
        self.model = machine_model(machine_type)
        self.spec = self.model.spec
        self.devices = fleet.devices_of(machine_type)
        self.ids = tuple(d.device_id for d in self.devices)
        self.log = log
        self.engagement = engagement
        n = len(self.devices)
        self.n = n
        seed, ti = config.seed, self.type_index
        sites = [fleet.site(d.site_id) for d in self.devices]
        accounts = [fleet.account(d.account_id) for d in self.devices]
        regions = [REGIONS[region_index(s.region)] for s in sites]
        hz60 = np.array([r.hz60 for r in regions], dtype=bool)
        self.units = self.model.sample_units(rng(seed, Stream.UNITS, ti), n, hz60)
        site_dirt = np.array([s.dirt for s in sites])
        for key in ("dirt", "dust"):
            if key in self.units:
                self.units = self.units.scaled(key, site_dirt)
        self.unit_chunks = [
            self.units.take(np.arange(first, min(n, first + _CHUNK), dtype=np.int64))
            for first in range(0, n, _CHUNK)
        ]
        self.wear = initial_state(
            rng(seed, Stream.WEAR, ti), self.spec, n, config.random_failure_scale
        )
        self.random_rate = (
            sum(m.random_rate_per_h for m in self.spec.random_modes) * config.random_failure_scale
        )
        self.schedule = build_schedule(
            rng(seed, Stream.SCHEDULE, ti),
            [a.shift_pattern for a in accounts],
            [a.index for a in accounts],
            [r.utc_offset_h for r in regions],
            [r.southern for r in regions],
        )
        self.ambient = AmbientModel(
            region=np.array([region_index(s.region) for s in sites], dtype=np.int64),
            site_offset_c=np.array([s.offset_c for s in sites]),
            indoor=np.array([s.indoor for s in sites], dtype=bool),
            weather=np.zeros(len(REGIONS)),
        )
        self.tiers = tuple(a.service_tier for a in accounts)
        self.device_rngs = [rng(seed, Stream.DEVICE_EVENTS, ti, i) for i in range(n)]
        spd = config.steps_per_day
        self.steps_per_day = spd
        self.next_pm = np.array(
            [
                int(pm_interval_days(g, tier) * g.random() * spd)
                for g, tier in zip(self.device_rngs, self.tiers, strict=True)
            ],
            dtype=np.int64,
        )
        self.down_until = np.zeros(n, dtype=np.int64)
        self.thermal: dict[str, F32] = {
            "bearing": np.full(n, 0.3, dtype=np.float32),
            "winding": np.full(n, 0.3, dtype=np.float32),
            "discharge": np.full(n, 0.3, dtype=np.float32),
        }
        self.sensors = SensorImpairer.plan(
            rng(seed, Stream.SENSOR_FAULTS, ti),
            self.spec,
            config.sensors,
            n,
            config.days,
            spd,
            table,
        )
        for k, mode in enumerate(self.spec.wear_modes):
            for i in np.flatnonzero(self.wear.tau_s[k] <= 0.0):
                self.log.onsets.append(OnsetRecord(self.ids[i], self.spec.name, mode.name, 0, True))

    # -- one day -----------------------------------------------------------------------

    def day(self, day: int) -> DayBlock:
        config = self.config
        spd = self.steps_per_day
        t0 = day * spd
        date = config.start + timedelta(days=day)
        doy = date.timetuple().tm_yday
        running, load = self.schedule.block(
            date.weekday(),
            doy,
            spd,
            self.engagement.on(day),
            rng(config.seed, Stream.SCHEDULE, self.type_index, day + 1),
        )
        for i in np.flatnonzero(self.down_until > t0):
            running[i, : min(spd, int(self.down_until[i] - t0))] = False
        ambient = self.ambient.block(doy, spd, rng(config.seed, Stream.WEATHER, day))
        level = self.wear.level()
        stress = self._stress(running, load, ambient, level.astype(np.float32))
        total = stress.sum(axis=2).astype(np.float64)
        run_h = running.sum(axis=1) * config.step_h
        tau_fail = self.wear.tau_fail()
        wear = self.wear
        events = (wear.tau + total >= tau_fail).any(axis=0)
        events |= run_h >= wear.random_left_h
        events |= self.next_pm < t0 + spd
        fast = ~events
        m = len(self.spec.wear_modes)
        d_arr = np.empty((m, self.n, spd), dtype=np.float32)
        for k in range(m):
            d_arr[k] = wear.a[k].astype(np.float32)[:, None]
            rows = np.flatnonzero(fast & (wear.tau[k] + total[k] > wear.tau_s[k]))
            if not rows.size:
                continue
            cum = np.cumsum(stress[k, rows], axis=1, dtype=np.float64)
            tau = wear.tau[k, rows, None] + cum
            d_arr[k, rows] = degradation(
                wear.a[k, rows, None],
                wear.b[k, rows, None],
                wear.lam[k, rows, None],
                wear.tau_s[k, rows, None],
                tau,
            ).astype(np.float32)
            for r in np.flatnonzero(wear.tau[k, rows] < wear.tau_s[k, rows]):
                dev = int(rows[r])
                j = int(np.searchsorted(cum[r], wear.tau_s[k, dev] - wear.tau[k, dev]))
                self._onset(dev, k, t0 + min(j, spd - 1))
        wear.tau[:, fast] += total[:, fast]
        wear.random_left_h[fast] -= run_h[fast]
        for i in np.flatnonzero(events):
            self._replay(int(i), t0, running, load, ambient, d_arr)
        values = self._readings(day, t0, running, load, ambient, d_arr)
        self.log.degradation.append(
            DailyDegradation(
                self.spec.name, day, self.ids, self.spec.wear_mode_names, d_arr[:, :, -1].copy()
            )
        )
        return DayBlock(self.spec.name, day, t0, self.ids, values, running, load)

    def _stress(self, running: Bool, load: F32, ambient: F32, level: F32) -> F32:
        """Stress-hours per wear mode and step, ``_CHUNK`` devices at a time."""
        spd = self.steps_per_day
        stress = np.empty((len(self.spec.wear_modes), self.n, spd), dtype=np.float32)
        for c, first in enumerate(range(0, self.n, _CHUNK)):
            part = slice(first, min(self.n, first + _CHUNK))
            stress[:, part] = self.model.stress(
                running[part],
                load[part],
                ambient[part],
                level[:, part],
                self.unit_chunks[c],
                self.config.step_h,
            )
        if self.config.wear_acceleration != 1:
            stress *= np.float32(self.config.wear_acceleration)
        return stress

    def _readings(
        self, day: int, t0: int, running: Bool, load: F32, ambient: F32, d_arr: F32
    ) -> dict[str, F32]:
        """True values, then sensor impairments, ``_CHUNK`` devices at a time (in cache)."""
        spd = self.steps_per_day
        g = rng(self.config.seed, Stream.NOISE, self.type_index, day)
        self.sensors.new_episodes(day, self.n, g)
        steps = np.arange(t0, t0 + spd, dtype=np.int64)
        values = {m.name: np.empty((self.n, spd), dtype=np.float32) for m in self.spec.metrics}
        for c, first in enumerate(range(0, self.n, _CHUNK)):
            rows = slice(first, min(self.n, first + _CHUNK))
            inputs = BlockInputs(
                running=running[rows],
                load=load[rows],
                ambient=ambient[rows],
                degradation=d_arr[:, rows],
                step_index=steps,
                step_h=self.config.step_h,
            )
            thermal = {k: v[rows] for k, v in self.thermal.items()}
            part = self.model.true_values(inputs, self.unit_chunks[c], thermal)
            self.sensors.apply_rows(part, day, first, g)
            for name, array in part.items():
                values[name][rows] = array
        self.sensors.finish(values, day, g)
        return values

    # -- devices with events -----------------------------------------------------------

    def _replay(self, i: int, t0: int, running: Bool, load: F32, ambient: F32, d_arr: F32) -> None:
        """Advance device ``i`` through the day event by event."""
        spd = self.steps_per_day
        wear = self.wear
        units = self.units.take(np.array([i], dtype=np.int64))
        accel = np.float32(self.config.wear_acceleration)
        step_h = self.config.step_h
        pos = 0
        while pos < spd:
            level = wear.level()[:, i]
            stress = self.model.stress(
                running[i : i + 1, pos:],
                load[i : i + 1, pos:],
                ambient[i : i + 1, pos:],
                level[:, None].astype(np.float32),
                units,
                step_h,
            )[:, 0, :]
            stress *= accel
            cum = np.cumsum(stress, axis=1, dtype=np.float64)
            run_h = np.cumsum(running[i, pos:]) * step_h
            span = spd - pos
            best, kind, mode = span, "", -1
            tau_fail = wear.tau_fail()[:, i] - wear.tau[:, i]
            for k in range(len(self.spec.wear_modes)):
                j = int(np.searchsorted(cum[k], tau_fail[k]))
                if j < best:
                    best, kind, mode = j, "wear", k
            j = int(np.searchsorted(run_h, wear.random_left_h[i]))
            if j < best:
                best, kind, mode = j, "random", -1
            if self.next_pm[i] < t0 + spd:
                j = max(int(self.next_pm[i]) - t0 - pos, 0)
                if j < best:
                    best, kind, mode = j, "pm", -1
            self._fill(
                i,
                k_range=len(self.spec.wear_modes),
                pos=pos,
                length=best,
                cum=cum,
                d_arr=d_arr,
                t0=t0,
            )
            if best > 0:
                wear.tau[:, i] += cum[:, best - 1]
                wear.random_left_h[i] -= float(run_h[best - 1])
            if not kind:
                return
            pos += best
            step = t0 + pos
            if kind == "pm":
                self._maintain(i, step, running, t0)
            else:
                self._fail(i, step, kind, mode, running, t0)

    def _fill(
        self, i: int, k_range: int, pos: int, length: int, cum: F64, d_arr: F32, t0: int
    ) -> None:
        if length <= 0:
            return
        wear = self.wear
        for k in range(k_range):
            tau = wear.tau[k, i] + cum[k, :length]
            d_arr[k, i, pos : pos + length] = degradation(
                wear.a[k, i : i + 1],
                wear.b[k, i : i + 1],
                wear.lam[k, i : i + 1],
                wear.tau_s[k, i : i + 1],
                tau,
            ).astype(np.float32)
            if wear.tau[k, i] < wear.tau_s[k, i] <= tau[-1]:
                j = int(np.searchsorted(cum[k, :length], wear.tau_s[k, i] - wear.tau[k, i]))
                self._onset(i, k, t0 + pos + j)

    def _onset(self, i: int, k: int, step: int) -> None:
        self.log.onsets.append(
            OnsetRecord(self.ids[i], self.spec.name, self.spec.wear_modes[k].name, step, False)
        )

    def _down(self, i: int, step: int, until: int, running: Bool, t0: int) -> None:
        self.down_until[i] = max(int(self.down_until[i]), until)
        running[i, step - t0 : min(self.steps_per_day, until - t0)] = False

    def _fail(self, i: int, step: int, kind: str, mode: int, running: Bool, t0: int) -> None:
        g = self.device_rngs[i]
        wear = self.wear
        spd = self.steps_per_day
        if kind == "wear":
            name = self.spec.wear_modes[mode].name
            level = 1.0
        else:
            rates = np.array([m.random_rate_per_h for m in self.spec.random_modes])
            pick = int(g.choice(len(rates), p=rates / rates.sum()))
            name = self.spec.random_modes[pick].name
            level = float(wear.level()[:, i].max())
            wear.random_left_h[i] = float(draw_random_left(g, self.random_rate, 1)[0])
        date = self.config.start + timedelta(days=step // spd)
        timing = repair_timing(g, self.tiers[i], name, date.weekday() >= 5)
        per_h = 1.0 / self.config.step_h
        opened = step + max(1, math.ceil(timing.opened_h * per_h))
        responded = step + math.ceil(timing.responded_h * per_h)
        resolved = max(step + math.ceil(timing.resolved_h * per_h), responded + 1)
        quality = draw_quality(g)
        code = trip_code(g, name)
        ticket_id = self.log.next_ticket_id()
        self.log.tickets.append(
            BreakdownTicket(
                ticket_id,
                self.ids[i],
                opened,
                responded,
                resolved,
                name,
                "wear" if kind == "wear" else "random",
            )
        )
        self.log.failures.append(
            FailureRecord(
                self.ids[i],
                self.spec.name,
                step,
                name,
                "wear" if kind == "wear" else "random",
                level,
                resolved,
                ticket_id,
                quality,
                code,
            )
        )
        self.log.device_events.append(DeviceEvent(self.ids[i], step, "trip", code))
        self.log.device_events.append(DeviceEvent(self.ids[i], resolved, "restart", "REPAIRED"))
        changes = corrective(g, self.spec, wear, i, mode if kind == "wear" else -1, quality)
        self.log.maintenance.append(
            MaintenanceRecord(
                self.ids[i],
                self.spec.name,
                responded,
                resolved,
                "corrective",
                quality,
                tuple(changes),
            )
        )
        self._down(i, step, resolved, running, t0)
        if self.next_pm[i] < resolved:
            self.next_pm[i] = resolved + spd

    def _maintain(self, i: int, step: int, running: Bool, t0: int) -> None:
        g = self.device_rngs[i]
        spd = self.steps_per_day
        if self.down_until[i] > step:
            self.next_pm[i] = int(self.down_until[i]) + spd
            return
        quality = draw_quality(g)
        end = step + max(1, math.ceil(pm_duration_h(g) / self.config.step_h))
        changes = preventive(g, self.spec, self.wear, i, quality)
        self.log.maintenance.append(
            MaintenanceRecord(
                self.ids[i], self.spec.name, step, end, "preventive", quality, tuple(changes)
            )
        )
        self.log.device_events.append(DeviceEvent(self.ids[i], step, "maintenance_start", "PM"))
        self.log.device_events.append(DeviceEvent(self.ids[i], end, "maintenance_end", "PM"))
        self._down(i, step, end, running, t0)
        self.next_pm[i] = step + int(pm_interval_days(g, self.tiers[i]) * spd)


class Simulation:
    """Every machine type of a fleet, day by day."""

    def __init__(self, config: SimConfig, fleet: Fleet, engagement: Engagement) -> None:
        self.config = config
        self.log = GroundTruthLog()
        table = normal_table()
        self.types = tuple(
            TypeSimulator(config, fleet, t, engagement, self.log, table)
            for t in MACHINE_TYPES
            if fleet.devices_of(t)
        )

    def days(self) -> Iterator[list[DayBlock]]:
        """Yield, for each simulated day, one block per machine type."""
        for day in range(self.config.days):
            yield [t.day(day) for t in self.types]
