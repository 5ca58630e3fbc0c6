"""Centrifugal pump on a variable-speed drive: metric catalogue, failure modes, physics.

Affinity laws set the healthy operating point (flow ∝ speed, pressure ∝ speed², power ∝
speed³). Hidden degradation then moves the readings:

* ``bearing_wear``: friction and impacts raise vibration (peak first, RMS later),
  bearing temperature, shaft power and motor current.
* ``seal_leak``: a worn mechanical seal bypasses flow; discharge pressure and delivered
  flow fall at the same speed.
* ``strainer_clog``: the suction strainer loads up; its differential pressure rises,
  flow falls and, when severe, the pump cavitates (vibration).
* ``winding_overheat``: insulation ageing and fouled cooling raise winding temperature
  and current; heat ages the insulation faster (a runaway).
"""

from __future__ import annotations

import numpy as np

from firmware_sim.arraytypes import F32, Bool
from firmware_sim.catalogue import FailureModeSpec, MachineSpec, MetricSpec
from firmware_sim.machine import BlockInputs, ParamTable
from firmware_sim.thermal import lag

SPEC = MachineSpec(
    name="centrifugal_pump",
    prefix="cp",
    description="End-suction centrifugal pump, induction motor on a variable-speed drive.",
    metrics=(
        MetricSpec("speed_rpm", "rpm", 0.0, 4000.0, 1.0, 4.0, 0.0, "shaft speed", cutoff=30.0),
        MetricSpec("flow_m3h", "m³/h", 0.0, 400.0, 0.1, 0.8, 0.01, "delivered flow", cutoff=1.0),
        MetricSpec("discharge_pressure_bar", "bar", 0.0, 25.0, 0.01, 0.04, 0.0, "discharge"),
        MetricSpec("strainer_dp_bar", "bar", 0.0, 2.5, 0.001, 0.004, 0.02, "suction strainer"),
        MetricSpec(
            "motor_current_a", "A", 0.0, 400.0, 0.1, 0.4, 0.01, "phase current (RMS)", cutoff=0.5
        ),
        MetricSpec(
            "power_kw", "kW", 0.0, 250.0, 0.1, 0.2, 0.01, "electrical input power", cutoff=0.2
        ),
        MetricSpec("vibration_rms_mm_s", "mm/s", 0.0, 50.0, 0.01, 0.05, 0.06, "velocity RMS"),
        MetricSpec("vibration_peak_g", "g", 0.0, 50.0, 0.01, 0.03, 0.15, "acceleration peak"),
        MetricSpec("bearing_temp_c", "°C", -40.0, 150.0, 0.1, 0.3, 0.0, "drive-end bearing"),
        MetricSpec("winding_temp_c", "°C", -40.0, 200.0, 0.1, 0.4, 0.0, "stator winding"),
        MetricSpec("ambient_temp_c", "°C", -40.0, 60.0, 0.1, 0.2, 0.0, "air at the motor"),
    ),
    wear_modes=(
        FailureModeSpec(
            "bearing_wear",
            "wear",
            "rolling-element bearing fatigue and lubrication loss",
            ("vibration_peak_g", "vibration_rms_mm_s", "bearing_temp_c", "motor_current_a"),
            onset_scale_h=30_000.0,
            onset_shape=1.8,
            progression_h=900.0,
            pm_reset=0.35,
        ),
        FailureModeSpec(
            "seal_leak",
            "wear",
            "mechanical seal face wear",
            ("discharge_pressure_bar", "flow_m3h"),
            falls=("discharge_pressure_bar", "flow_m3h"),
            onset_scale_h=28_000.0,
            onset_shape=2.0,
            progression_h=700.0,
            pm_reset=0.0,
        ),
        FailureModeSpec(
            "strainer_clog",
            "wear",
            "debris loading the suction strainer",
            ("strainer_dp_bar", "flow_m3h", "vibration_rms_mm_s"),
            falls=("flow_m3h",),
            onset_scale_h=7_000.0,
            onset_shape=2.5,
            progression_h=500.0,
            pm_reset=0.95,
        ),
        FailureModeSpec(
            "winding_overheat",
            "wear",
            "stator insulation ageing and fouled motor cooling",
            ("winding_temp_c", "motor_current_a", "power_kw"),
            onset_scale_h=45_000.0,
            onset_shape=2.2,
            progression_h=1_100.0,
            pm_reset=0.25,
        ),
    ),
    random_modes=(
        FailureModeSpec(
            "drive_fault", "random", "VFD trip or supply surge", random_rate_per_h=1 / 60_000
        ),
        FailureModeSpec(
            "impeller_damage",
            "random",
            "foreign object through the impeller",
            random_rate_per_h=1 / 120_000,
        ),
    ),
)

BEARING, SEAL, CLOG, WINDING = range(4)
_AMPS_PER_KW = np.float32(1000.0 / (3**0.5 * 400.0 * 0.86))


def _f(x: float) -> np.float32:
    return np.float32(x)


class PumpModel:
    """Physics of :data:`SPEC`."""

    spec = SPEC

    def sample_units(self, rng: np.random.Generator, n: int, hz60: Bool) -> ParamTable:
        poles4 = rng.random(n) < 0.4
        n0 = np.where(poles4, 1475.0, 2950.0) * np.where(hz60, 1.2, 1.0)
        q0 = np.clip(rng.lognormal(np.log(80.0), 0.5, n), 15.0, 250.0)
        p0 = rng.uniform(3.0, 10.0, n)
        eta = rng.uniform(0.62, 0.82, n)
        w0 = q0 * p0 / 36.0 / eta / 0.93
        return ParamTable(
            {
                "n0": n0,
                "q0": q0,
                "p0": p0,
                "p_static": rng.uniform(0.3, 2.0, n),
                "eta": eta,
                "w0": w0,
                "i0": w0 * float(_AMPS_PER_KW) * 1.15,
                "friction_kw": w0 * rng.uniform(0.02, 0.04, n),
                "v0": rng.lognormal(np.log(1.6), 0.35, n),
                "g0": rng.lognormal(np.log(0.8), 0.35, n),
                "tb_rise": rng.uniform(20.0, 36.0, n),
                "tw_rise": rng.uniform(40.0, 62.0, n),
                "dp0": rng.uniform(0.04, 0.12, n),
                "dirt": rng.lognormal(0.0, 0.5, n),
                "v_background": rng.uniform(0.05, 0.3, n),
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
        s = load * _f(0.45) + _f(0.55)
        out = np.empty((4, *load.shape), dtype=np.float32)
        base = _f(0.4) + _f(0.6) * s
        np.multiply(base * base * base, r, out=out[BEARING])
        clog_now = degradation_now[CLOG][:, None]
        np.multiply(s * s, r, out=out[SEAL])
        out[SEAL] *= _f(1.0) + _f(2.0) * np.clip(clog_now - _f(0.5), 0.0, None)
        np.multiply(s, r, out=out[CLOG])
        out[CLOG] *= units.col("dirt")
        current_sq = (_f(0.3) + _f(0.7) * s * s * s) ** 2
        winding_now = degradation_now[WINDING][:, None]
        rise = units.col("tw_rise") * (_f(1.0) + _f(1.2) * winding_now * np.sqrt(winding_now))
        rise = current_sq * rise
        hot = ambient + rise
        np.exp2((hot - _f(95.0)) / _f(10.0), out=out[WINDING])
        out[WINDING] *= r
        return out

    def true_values(
        self, inputs: BlockInputs, units: ParamTable, thermal: dict[str, F32]
    ) -> dict[str, F32]:
        r = inputs.running.astype(np.float32)
        d = inputs.degradation
        d_bear, d_seal, d_clog, d_wind = d[BEARING], d[SEAL], d[CLOG], d[WINDING]
        bear_15 = d_bear * np.sqrt(d_bear)
        # hydraulics: affinity laws, less what leaks and what the strainer chokes
        speed_ratio = inputs.load * _f(0.45)
        speed_ratio += _f(0.55)
        speed_ratio *= r
        speed = speed_ratio * units.col("n0")
        s2 = speed_ratio * speed_ratio
        hydraulic_loss = d_clog * np.sqrt(d_clog)
        hydraulic_loss *= _f(-0.3)
        hydraulic_loss -= _f(0.2) * d_seal
        hydraulic_loss += _f(1.0)
        np.maximum(hydraulic_loss, _f(0.0), out=hydraulic_loss)
        flow_ratio = speed_ratio * hydraulic_loss
        flow = flow_ratio * units.col("q0")
        head_loss = d_seal * np.sqrt(d_seal)
        head_loss *= _f(-0.3)
        clog_sq = d_clog * d_clog
        head_loss -= _f(0.12) * clog_sq
        head_loss += _f(1.0)
        np.maximum(head_loss, _f(0.0), out=head_loss)
        head = s2 * units.col("p0")
        head *= head_loss
        pressure = head + units.col("p_static")
        strainer = flow_ratio * flow_ratio
        strainer *= units.col("dp0")
        clog_sq *= _f(10.0)
        clog_sq += _f(1.0)
        strainer *= clog_sq
        # power and current: hydraulic power, bearing friction, motor efficiency
        power = flow * head
        power *= (_f(1.0 / 36.0) / units.col("eta")) / (
            _f(0.93) - _f(0.06) * np.minimum(d_wind, _f(1.5))
        )
        friction = d_bear * d_bear
        friction *= _f(4.0)
        friction += _f(1.0)
        friction *= speed_ratio
        friction *= units.col("friction_kw") / _f(0.9)
        power += friction
        wind_15 = d_wind * np.sqrt(d_wind)
        current = power * _AMPS_PER_KW
        current += _f(0.28) * units.col("i0") * r
        wind_factor = wind_15 * _f(0.10)
        wind_factor += _f(1.0)
        current *= wind_factor
        # vibration: machine baseline × bearing defects (peak early, RMS late) × cavitation
        cavitation = d_clog - _f(0.6)
        np.maximum(cavitation, _f(0.0), out=cavitation)
        machine_vib = s2 * _f(0.7)
        machine_vib += _f(0.3) * r
        vib_rms = bear_15 * _f(5.0)
        vib_rms += _f(2.5) * cavitation
        vib_rms += _f(1.0)
        vib_rms *= machine_vib
        vib_rms *= units.col("v0")
        vib_rms += units.col("v_background")
        vib_peak = np.sqrt(d_bear)
        vib_peak *= _f(6.0)
        vib_peak += _f(4.0) * cavitation
        vib_peak += _f(1.0)
        vib_peak *= machine_vib
        vib_peak *= units.col("g0")
        vib_peak += _f(0.05)
        # temperatures: first-order lags of friction and copper losses
        bearing_heat = bear_15 * _f(2.2)
        bearing_heat += _f(1.0)
        bearing_heat *= _f(0.35) * r + _f(0.65) * speed_ratio
        bearing_temp = lag(bearing_heat, thermal["bearing"], 0.5, inputs.step_h)
        bearing_temp *= units.col("tb_rise")
        bearing_temp += inputs.ambient
        winding_heat = current / units.col("i0")
        winding_heat *= winding_heat
        wind_15 *= _f(1.2)
        wind_15 += _f(1.0)
        winding_heat *= wind_15
        winding_temp = lag(winding_heat, thermal["winding"], 0.3, inputs.step_h)
        winding_temp *= units.col("tw_rise")
        winding_temp += inputs.ambient
        return {
            "speed_rpm": speed,
            "flow_m3h": flow,
            "discharge_pressure_bar": pressure,
            "strainer_dp_bar": strainer,
            "motor_current_a": current,
            "power_kw": power,
            "vibration_rms_mm_s": vib_rms,
            "vibration_peak_g": vib_peak,
            "bearing_temp_c": bearing_temp,
            "winding_temp_c": winding_temp,
            "ambient_temp_c": inputs.ambient.copy(),
        }
