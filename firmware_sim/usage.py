"""Daily usage telemetry per device: hours run, starts, duty cycle, energy, and how the
customer's people use the product (HMI / app sessions, feature use).

Hours, starts, duty and energy follow from the simulated operation. Sessions and feature
use follow the account's hidden engagement (features an account never adopted stay at
zero): usage is where a health model can see engagement drift.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from firmware_sim.arraytypes import F32, F64, I64, Bool
from firmware_sim.seeds import Stream, rng

FEATURES: tuple[str, ...] = ("remote_start", "scheduler", "eco_mode", "alerts_ack", "report_export")
_FEATURE_RATE = np.array([1.5, 0.6, 0.8, 2.0, 0.3])


def usage_rng(seed: int, type_index: int, day: int) -> np.random.Generator:
    """The generator of one machine type's usage draws on ``day`` (offline and live alike)."""
    return rng(seed, Stream.USAGE, 1000 + type_index, day)


@dataclass
class UsageMeter:
    """Usage of one machine type's devices.

    Attributes:
        account: account index per device.
        adopted: ``[devices, features]`` the feature is in use at that customer.
        users: typical daily users at the device.
        last_running: running state at the end of the previous day (to count starts).
    """

    account: I64
    adopted: Bool
    users: F64
    last_running: Bool

    @classmethod
    def plan(cls, g: np.random.Generator, account: I64, engagement0: F32) -> UsageMeter:
        n = account.shape[0]
        e = engagement0[account].astype(np.float64)
        adopted = g.random((n, len(FEATURES))) < (0.2 + 0.7 * e)[:, None]
        users = np.asarray(g.lognormal(0.0, 0.5, n), dtype=np.float64)
        return cls(account, adopted, users, np.zeros(n, dtype=bool))

    def day(
        self,
        running: Bool,
        load: F32,
        power_kw: F32,
        step_h: float,
        engagement: F32,
        g: np.random.Generator,
    ) -> dict[str, np.ndarray]:
        """One day of usage for every device (columns of :func:`schema.usage_schema`)."""
        hours = running.sum(axis=1) * step_h
        starts = (running[:, 1:] & ~running[:, :-1]).sum(axis=1) + (
            running[:, 0] & ~self.last_running
        )
        self.last_running = running[:, -1].copy()
        run_steps = running.sum(axis=1)
        duty = np.where(run_steps > 0, (load * running).sum(axis=1) / np.maximum(run_steps, 1), 0)
        energy = np.nansum(power_kw, axis=1) * step_h
        e = engagement[self.account].astype(np.float64)
        active = np.where(hours > 0, 1.0, 0.25)
        sessions = g.poisson(self.users * (0.3 + 3.5 * e**1.5) * active)
        out: dict[str, np.ndarray] = {
            "operating_hours": hours.astype(np.float32),
            "starts": starts.astype(np.int32),
            "duty_cycle": duty.astype(np.float32),
            "energy_kwh": energy.astype(np.float32),
            "sessions": sessions.astype(np.int32),
        }
        lam = self.adopted * _FEATURE_RATE[None, :] * (e**2 * active * self.users)[:, None]
        counts = g.poisson(lam)
        for f, name in enumerate(FEATURES):
            out[f"feature_{name}"] = counts[:, f].astype(np.int32)
        return out
