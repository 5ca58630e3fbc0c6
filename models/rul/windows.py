"""Sliding windows over a device's readings, with a mask that marks what was not observed.

Gaps are data: a missing reading (NaN, e.g. while the device was offline) and the padding
in front of a short history are both marked ``0`` in the mask and never read as values.
The model input stacks, per time step, the normalised values (missing ones set to 0, the
training mean), the mask, and optionally the age channel. Numpy only: serving uses it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from models.manifest import WindowSpec


@dataclass(frozen=True)
class Windows:
    """A batch of model inputs.

    Attributes:
        inputs: float32, shape ``(n, length, channels)``.
        end_index: for each window, the index of its last reading in its sequence.
        sequence: for each window, which input sequence it came from.
    """

    inputs: NDArray[np.float32]
    end_index: NDArray[np.int64]
    sequence: NDArray[np.int64]


def n_channels(n_features: int, spec: WindowSpec) -> int:
    return 2 * n_features + (1 if spec.age_scale is not None else 0)


def _step_channels(
    values: NDArray[np.float64], age: NDArray[np.float64] | None, spec: WindowSpec
) -> NDArray[np.float32]:
    """Per-step channels for one whole sequence: ``(n, channels)``."""
    mask = np.isfinite(values)
    parts = [np.where(mask, values, 0.0), mask.astype(np.float64)]
    if spec.age_scale is not None:
        if age is None:
            raise ValueError("this window spec needs the readings' age")
        parts.append((age / spec.age_scale)[:, None])
    return np.concatenate(parts, axis=1).astype(np.float32)


def _padded(
    channels: NDArray[np.float32], n_features: int, length: int, min_history: int | None = None
) -> tuple[NDArray[np.float32], int]:
    """Front-pad by repeating the first step, masked, so a window can end at reading
    ``min_history - 1``; by default a sequence is padded only up to ``length``.
    """
    first_end = min(length if min_history is None else min(min_history, length), len(channels))
    missing = length - first_end
    if missing <= 0:
        return channels, 0
    first = channels[:1].copy()
    first[:, n_features : 2 * n_features] = 0.0
    return np.concatenate([np.repeat(first, missing, axis=0), channels], axis=0), missing


def sliding_windows(
    sequences: list[NDArray[np.float64]],
    spec: WindowSpec,
    ages: list[NDArray[np.float64]] | None = None,
    stride: int = 1,
    min_history: int | None = None,
) -> Windows:
    """Every window ending at each reading from ``length - 1`` on (padding short sequences).

    ``sequences`` are normalised ``(n_i, features)`` arrays with NaN for missing values.
    A sequence shorter than ``length`` gives one window, ending at its last reading.
    With ``min_history``, windows end at every reading from ``min_history - 1`` on, the
    early ones padded as a young device's would be at serving time.
    """
    blocks, ends, owners = [], [], []
    for index, values in enumerate(sequences):
        n_features = values.shape[1]
        age = ages[index] if ages is not None else None
        channels, offset = _padded(
            _step_channels(values, age, spec), n_features, spec.length, min_history
        )
        view = np.lib.stride_tricks.sliding_window_view(channels, spec.length, axis=0)
        view = view.transpose(0, 2, 1)[::stride]
        blocks.append(view)
        last = np.arange(spec.length - 1, channels.shape[0], dtype=np.int64)[::stride] - offset
        ends.append(last)
        owners.append(np.full(last.shape[0], index, dtype=np.int64))
    return Windows(
        inputs=np.ascontiguousarray(np.concatenate(blocks, axis=0), dtype=np.float32),
        end_index=np.concatenate(ends),
        sequence=np.concatenate(owners),
    )


def last_windows(
    sequences: list[NDArray[np.float64]],
    spec: WindowSpec,
    ages: list[NDArray[np.float64]] | None = None,
) -> NDArray[np.float32]:
    """One window per sequence, ending at its last reading: ``(n_sequences, length, channels)``."""
    out = []
    for index, values in enumerate(sequences):
        age = ages[index] if ages is not None else None
        tail = values[-spec.length :]
        tail_age = age[-spec.length :] if age is not None else None
        channels, _ = _padded(_step_channels(tail, tail_age, spec), values.shape[1], spec.length)
        out.append(channels)
    return np.stack(out).astype(np.float32)
