"""Maintenance: when it is done, how well, and what it does to wear.

Preventive maintenance (PM) follows the service tier's interval. A *good* visit removes
part of each mode's degradation (``FailureModeSpec.pm_reset``: consumables such as
filters are renewed, bearings relubricated) and, when a technician spots advanced wear,
replaces the part. A *poor* visit changes nothing. A *bad* one damages something
(misaligned coupling, nicked seal): that mode's wear jumps and grows faster afterwards.
Corrective maintenance after a failure replaces the failed part, with the same qualities.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from firmware_sim.catalogue import MachineSpec
from firmware_sim.wear import FAILURE_LEVEL, WearState, degradation, draw_fresh

QUALITIES: tuple[str, ...] = ("good", "poor", "bad")
_QUALITY_P = (0.78, 0.15, 0.07)
_PM_DAYS = {"basic": (330.0, 400.0), "standard": (110.0, 180.0), "premium": (55.0, 90.0)}
_INSPECTION_LIMIT = 0.45


@dataclass(frozen=True)
class ModeChange:
    """What a visit did to one wear mode."""

    mode: str
    action: str
    d_before: float
    d_after: float


def pm_interval_days(g: np.random.Generator, tier: str) -> float:
    low, high = _PM_DAYS[tier]
    return float(g.uniform(low, high))


def draw_quality(g: np.random.Generator) -> str:
    return QUALITIES[int(g.choice(3, p=_QUALITY_P))]


def _set_fresh(
    g: np.random.Generator, spec: MachineSpec, state: WearState, k: int, i: int, quality: str
) -> None:
    mode = spec.wear_modes[k]
    fresh = draw_fresh(g, mode, 0.5 if quality == "bad" else 1.0)
    now = float(state.tau[k, i])
    a = fresh.a + (float(g.uniform(0.1, 0.25)) if quality == "bad" else 0.0)
    lam = fresh.lam * (float(g.uniform(1.3, 1.8)) if quality == "bad" else 1.0)
    state.a[k, i] = a
    state.b[k, i] = fresh.b
    state.lam[k, i] = lam
    state.tau_s[k, i] = now + fresh.onset_h


def _scale_segment(state: WearState, k: int, i: int, keep: float) -> None:
    """Keep ``keep`` of the degradation and of its growth; progression continues."""
    now = float(state.tau[k, i])
    d_now = float(_level(state, k, i))
    if now >= state.tau_s[k, i]:
        growth = state.b[k, i] * np.exp(state.lam[k, i] * (now - state.tau_s[k, i]))
        state.b[k, i] = max(growth * keep, 1e-4)
        state.tau_s[k, i] = now
    state.a[k, i] = d_now * keep if now >= state.tau_s[k, i] else state.a[k, i] * keep


def _damage(g: np.random.Generator, state: WearState, k: int, i: int) -> None:
    now = float(state.tau[k, i])
    d_now = float(_level(state, k, i))
    jump = float(g.uniform(0.1, 0.3))
    target = min(d_now + jump, 0.85 * FAILURE_LEVEL)
    # restart as an already progressing segment from ``target`` with a faster rate
    if now < state.tau_s[k, i]:
        state.b[k, i] = float(g.uniform(0.02, 0.06))
    else:
        state.b[k, i] = float(state.b[k, i] * np.exp(state.lam[k, i] * (now - state.tau_s[k, i])))
    state.lam[k, i] *= float(g.uniform(1.3, 1.8))
    state.a[k, i] = target
    state.tau_s[k, i] = now


def _level(state: WearState, k: int, i: int) -> float:
    return float(
        degradation(
            state.a[k, i : i + 1],
            state.b[k, i : i + 1],
            state.lam[k, i : i + 1],
            state.tau_s[k, i : i + 1],
            state.tau[k, i : i + 1],
        )[0]
    )


def preventive(
    g: np.random.Generator, spec: MachineSpec, state: WearState, i: int, quality: str
) -> list[ModeChange]:
    """Apply a preventive visit of ``quality`` to device ``i`` (state changed in place)."""
    changes: list[ModeChange] = []
    damaged = int(g.integers(len(spec.wear_modes))) if quality == "bad" else -1
    for k, mode in enumerate(spec.wear_modes):
        before = _level(state, k, i)
        action = "unchanged"
        if quality == "good":
            if (before >= _INSPECTION_LIMIT and g.random() < 0.6) or mode.pm_reset >= 0.9:
                _set_fresh(g, spec, state, k, i, quality)
                action = "replaced"
            elif mode.pm_reset > 0:
                _scale_segment(state, k, i, 1.0 - mode.pm_reset)
                action = "reduced"
        elif k == damaged:
            _damage(g, state, k, i)
            action = "damaged"
        changes.append(ModeChange(mode.name, action, before, _level(state, k, i)))
    return changes


def corrective(
    g: np.random.Generator,
    spec: MachineSpec,
    state: WearState,
    i: int,
    mode_index: int,
    quality: str,
) -> list[ModeChange]:
    """Replace the failed part of wear mode ``mode_index`` (``-1``: a random failure)."""
    if mode_index < 0:
        return []
    before = _level(state, mode_index, i)
    if quality == "poor":
        # a used or wrong part: works again, but starts half worn
        _set_fresh(g, spec, state, mode_index, i, "good")
        state.a[mode_index, i] = float(g.uniform(0.3, 0.5))
        action = "replaced_poorly"
    else:
        _set_fresh(g, spec, state, mode_index, i, quality)
        action = "replaced" if quality == "good" else "replaced_badly"
    return [
        ModeChange(spec.wear_modes[mode_index].name, action, before, _level(state, mode_index, i))
    ]
