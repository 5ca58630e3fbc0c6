"""Oil-injected rotary-screw air compressor, fixed speed, load/unload control.

The compressor loads until the receiver reaches the upper pressure, unloads until it
falls to the lower one; the loaded share of each cycle follows air demand. Hidden
degradation then moves the readings:

* ``bearing_wear``: vibration (peak first, RMS later), bearing temperature, power.
* ``inlet_filter_clog``: inlet filter differential pressure rises, free air delivery
  falls, so the machine loads longer and draws more power per m³.
* ``valve_leak``: the minimum-pressure / check valve leaks back; capacity falls, the
  loaded share rises and, when demand exceeds capacity, pressure sags.
* ``cooler_fouling``: the oil cooler fouls; discharge temperature climbs to the trip.
"""

from __future__ import annotations

import numpy as np

from firmware_sim.arraytypes import F32, Bool
from firmware_sim.catalogue import FailureModeSpec, MachineSpec, MetricSpec
from firmware_sim.machine import BlockInputs, ParamTable
from firmware_sim.thermal import lag

SPEC = MachineSpec(
    name="air_compressor",
    prefix="ac",
    description="Oil-injected rotary-screw air compressor, fixed speed, load/unload control.",
    metrics=(
        MetricSpec("speed_rpm", "rpm", 0.0, 4000.0, 1.0, 3.0, 0.0, "motor speed", cutoff=30.0),
        MetricSpec("discharge_pressure_bar", "bar", 0.0, 16.0, 0.01, 0.03, 0.0, "package outlet"),
        MetricSpec(
            "flow_m3min", "m³/min", 0.0, 60.0, 0.01, 0.05, 0.01, "free air delivery", cutoff=0.05
        ),
        MetricSpec("inlet_filter_dp_mbar", "mbar", 0.0, 250.0, 0.1, 0.6, 0.02, "inlet filter"),
        MetricSpec("discharge_temp_c", "°C", -40.0, 140.0, 0.1, 0.3, 0.0, "airend discharge"),
        MetricSpec(
            "motor_current_a", "A", 0.0, 600.0, 0.1, 0.4, 0.01, "phase current (RMS)", cutoff=0.5
        ),
        MetricSpec(
            "power_kw", "kW", 0.0, 400.0, 0.1, 0.2, 0.01, "electrical input power", cutoff=0.2
        ),
        MetricSpec("vibration_rms_mm_s", "mm/s", 0.0, 50.0, 0.01, 0.06, 0.06, "velocity RMS"),
        MetricSpec("vibration_peak_g", "g", 0.0, 50.0, 0.01, 0.04, 0.15, "acceleration peak"),
        MetricSpec("bearing_temp_c", "°C", -40.0, 150.0, 0.1, 0.3, 0.0, "motor drive-end bearing"),
        MetricSpec("ambient_temp_c", "°C", -40.0, 60.0, 0.1, 0.2, 0.0, "air at the inlet"),
    ),
    wear_modes=(
        FailureModeSpec(
            "bearing_wear",
            "wear",
            "rolling-element bearing fatigue",
            ("vibration_peak_g", "vibration_rms_mm_s", "bearing_temp_c", "power_kw"),
            onset_scale_h=32_000.0,
            onset_shape=1.8,
            progression_h=1_000.0,
            pm_reset=0.35,
        ),
        FailureModeSpec(
            "inlet_filter_clog",
            "wear",
            "dust loading the inlet filter",
            ("inlet_filter_dp_mbar", "flow_m3min", "power_kw"),
            falls=("flow_m3min",),
            onset_scale_h=5_000.0,
            onset_shape=2.5,
            progression_h=450.0,
            pm_reset=0.95,
        ),
        FailureModeSpec(
            "valve_leak",
            "wear",
            "minimum-pressure / check valve seat wear",
            ("power_kw", "discharge_pressure_bar", "flow_m3min"),
            falls=("discharge_pressure_bar", "flow_m3min"),
            onset_scale_h=24_000.0,
            onset_shape=2.0,
            progression_h=700.0,
            pm_reset=0.0,
        ),
        FailureModeSpec(
            "cooler_fouling",
            "wear",
            "oil cooler fouling",
            ("discharge_temp_c",),
            onset_scale_h=16_000.0,
            onset_shape=2.0,
            progression_h=800.0,
            pm_reset=0.6,
        ),
    ),
    random_modes=(
        FailureModeSpec(
            "electrical_fault", "random", "contactor or supply fault", random_rate_per_h=1 / 60_000
        ),
        FailureModeSpec(
            "controller_fault", "random", "controller failure", random_rate_per_h=1 / 100_000
        ),
    ),
)

BEARING, FILTER, VALVE, COOLER = range(4)
_AMPS_PER_KW = np.float32(1000.0 / (3**0.5 * 400.0 * 0.85))


def _f(x: float) -> np.float32:
    return np.float32(x)


class CompressorModel:
    """Physics of :data:`SPEC`."""

    spec = SPEC

    def sample_units(self, rng: np.random.Generator, n: int, hz60: Bool) -> ParamTable:
        q0 = np.clip(rng.lognormal(np.log(6.0), 0.5, n), 1.5, 30.0)
        w0 = q0 * rng.uniform(5.8, 7.2, n)
        return ParamTable(
            {
                "n0": np.where(hz60, 1780.0, 1480.0) * rng.uniform(0.985, 0.995, n),
                "q0": q0,
                "w0": w0,
                "i0": w0 * float(_AMPS_PER_KW),
                "p_low": rng.uniform(6.3, 7.5, n),
                "band": rng.uniform(0.4, 0.8, n),
                "period_steps": rng.uniform(3.0, 9.0, n),
                "phase": rng.random(n),
                "v0": rng.lognormal(np.log(2.0), 0.35, n),
                "g0": rng.lognormal(np.log(1.2), 0.35, n),
                "tb_rise": rng.uniform(18.0, 32.0, n),
                "td_rise": rng.uniform(52.0, 66.0, n),
                "dp0": rng.uniform(15.0, 30.0, n),
                "dust": rng.lognormal(0.0, 0.5, n),
                "v_background": rng.uniform(0.1, 0.4, n),
            }
        )

    def stress(
        self,
        running: Bool,
        load: F32,
        ambient: F32,
        degradation_now: F32,
        units: ParamTable,
        step_h: float,
    ) -> F32:
        r = running.astype(np.float32) * _f(step_h)
        out = np.empty((4, *load.shape), dtype=np.float32)
        base = _f(0.5) + _f(0.5) * load
        np.multiply(base * base * base, r, out=out[BEARING])
        np.multiply(load, r, out=out[FILTER])
        out[FILTER] *= units.col("dust")
        cycling = _f(0.3) + _f(3.0) * load * (_f(1.0) - load)
        np.multiply(cycling, r, out=out[VALVE])
        hot = _f(1.0) + np.maximum(ambient - _f(25.0), 0.0) / _f(15.0)
        np.multiply(hot * load, r, out=out[COOLER])
        return out

    def true_values(
        self, inputs: BlockInputs, units: ParamTable, thermal: dict[str, F32]
    ) -> dict[str, F32]:
        r = inputs.running.astype(np.float32)
        d = inputs.degradation
        d_bear, d_filt, d_valve, d_cool = d[BEARING], d[FILTER], d[VALVE], d[COOLER]
        filt_15 = d_filt * np.sqrt(d_filt)
        bear_15 = d_bear * np.sqrt(d_bear)
        # load/unload control: loaded share of each cycle = demand / capacity
        capacity = filt_15 * _f(-0.3)
        capacity -= _f(0.4) * d_valve
        capacity += _f(1.0)
        np.maximum(capacity, _f(0.2), out=capacity)
        duty = inputs.load / capacity
        np.minimum(duty, _f(0.98), out=duty)
        deficit = inputs.load - capacity
        np.maximum(deficit, _f(0.0), out=deficit)
        cycle = inputs.step_index.astype(np.float32)[None, :] / units.col("period_steps")
        cycle += units.col("phase")
        phase = cycle - np.floor(cycle)
        loaded_b = phase < duty
        loaded_b &= inputs.running
        loaded = loaded_b.astype(np.float32)
        rising = phase / duty
        falling = _f(1.0) - phase
        falling /= _f(1.0) - duty
        position = np.where(loaded_b, rising, falling)
        pressure = position * units.col("band")
        pressure += units.col("p_low")
        pressure -= _f(3.0) * deficit
        pressure -= _f(0.35) * d_valve
        pressure *= r
        pressure += _f(0.2) * (_f(1.0) - r)
        flow = capacity * loaded
        flow *= units.col("q0")
        filter_dp = _f(0.2) * r + _f(0.8) * loaded
        filter_dp *= units.col("dp0")
        clog = d_filt * d_filt
        clog *= _f(6.0)
        clog += _f(1.0)
        filter_dp *= clog
        loaded_power = filt_15 * _f(0.15)
        loaded_power += _f(0.06) * d_valve
        loaded_power += _f(1.0)
        loaded_power *= loaded
        loaded_power *= _f(0.7)
        power = _f(0.3) * r
        power += loaded_power
        friction = d_bear * d_bear
        friction *= _f(0.08)
        friction += _f(1.0)
        power *= friction
        power *= units.col("w0")
        current = power * _AMPS_PER_KW
        current += _f(0.25) * units.col("i0") * r
        machine_vib = _f(0.6) * r + _f(0.4) * loaded
        vib_rms = bear_15 * _f(5.0)
        vib_rms += _f(1.0)
        vib_rms *= machine_vib
        vib_rms *= units.col("v0")
        vib_rms += units.col("v_background")
        vib_peak = np.sqrt(d_bear)
        vib_peak *= _f(6.0)
        vib_peak += _f(1.0)
        vib_peak *= machine_vib
        vib_peak *= units.col("g0")
        vib_peak += _f(0.05)
        discharge_heat = d_cool * np.sqrt(d_cool)
        discharge_heat *= _f(0.75)
        discharge_heat += _f(1.0)
        discharge_heat *= _f(0.35) * r + _f(0.65) * loaded
        discharge_temp = lag(discharge_heat, thermal["discharge"], 0.15, inputs.step_h)
        discharge_temp *= units.col("td_rise")
        discharge_temp += inputs.ambient
        bearing_heat = bear_15 * _f(2.2)
        bearing_heat += _f(1.0)
        bearing_heat *= _f(0.5) * r + _f(0.5) * loaded
        bearing_temp = lag(bearing_heat, thermal["bearing"], 0.5, inputs.step_h)
        bearing_temp *= units.col("tb_rise")
        bearing_temp += inputs.ambient
        return {
            "speed_rpm": r * units.col("n0"),
            "discharge_pressure_bar": pressure,
            "flow_m3min": flow,
            "inlet_filter_dp_mbar": filter_dp,
            "discharge_temp_c": discharge_temp,
            "motor_current_a": current,
            "power_kw": power,
            "vibration_rms_mm_s": vib_rms,
            "vibration_peak_g": vib_peak,
            "bearing_temp_c": bearing_temp,
            "ambient_temp_c": inputs.ambient.copy(),
        }
