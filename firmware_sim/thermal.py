"""First-order thermal lag, vectorised across devices and, block-wise, across time."""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

from firmware_sim.arraytypes import F32

_BLOCK = 48


@lru_cache(maxsize=32)
def _kernel(alpha: float, block: int) -> tuple[F32, F32]:
    """Impulse response within a block, and the decay of the block's starting value."""
    keep = 1.0 - alpha
    k = np.arange(block)
    lag_steps = k[None, :] - k[:, None]
    response = np.where(lag_steps >= 0, alpha * keep ** np.maximum(lag_steps, 0), 0.0)
    decay = keep ** (k + 1.0)
    return response.astype(np.float32), decay.astype(np.float32)


def lag(heat: F32, state: F32, tau_h: float, step_h: float) -> F32:
    """Low-pass ``heat`` (``[devices, steps]``) with time constant ``tau_h``.

    ``y[t] = y[t-1] + (1 - exp(-step/tau)) * (heat[t] - y[t-1])``, starting from ``state``
    (``[devices]``), which is overwritten with the last column. Computed exactly, block by
    block: within a block of 48 steps the response is one matrix product; only the block
    starts are carried sequentially.
    """
    n, steps = heat.shape
    alpha = 1.0 - math.exp(-step_h / tau_h)
    blocks = -(-steps // _BLOCK)
    padded = blocks * _BLOCK
    x = heat if padded == steps else np.pad(heat, ((0, 0), (0, padded - steps)))
    response, decay = _kernel(round(alpha, 12), _BLOCK)
    y = np.ascontiguousarray(x, dtype=np.float32).reshape(n, blocks, _BLOCK) @ response
    carry = state.astype(np.float32, copy=True)
    for b in range(blocks):
        part = y[:, b, :]
        part += carry[:, None] * decay[None, :]
        carry = part[:, -1].copy()
    out = y.reshape(n, padded)[:, :steps]
    state[:] = out[:, -1]
    return np.ascontiguousarray(out)
