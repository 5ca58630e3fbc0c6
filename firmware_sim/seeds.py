"""Deterministic random streams: one named, independent PCG64 stream per purpose.

Every random draw in the simulator comes from a generator built here from the user's
seed, a :class:`Stream` and integer keys (device index, day, …). Streams are children of
``SeedSequence(seed)`` in the sense of :meth:`numpy.random.SeedSequence.spawn`: the key
``(stream, *keys)`` is the child's ``spawn_key``. Nothing uses global random state, and
a stream's draws never depend on how many draws another stream made.
"""

from __future__ import annotations

from enum import IntEnum

import numpy as np


class Stream(IntEnum):
    """What a random stream is used for. Values are part of the determinism contract."""

    FLEET = 1
    ACCOUNTS = 2
    ENGAGEMENT = 3
    UNITS = 4
    WEAR = 5
    DEVICE_EVENTS = 6
    SCHEDULE = 7
    LOAD = 8
    WEATHER = 9
    NOISE = 10
    SENSOR_FAULTS = 11
    USAGE = 12
    OUTCOMES = 13
    EXPORTS = 14
    FAULTS = 15
    TICKETS = 16


def seed_sequence(seed: int, stream: Stream, *keys: int) -> np.random.SeedSequence:
    """The ``SeedSequence`` of one stream (and optional sub-keys) of ``seed``."""
    return np.random.SeedSequence(seed, spawn_key=(int(stream), *(int(k) for k in keys)))


def rng(seed: int, stream: Stream, *keys: int) -> np.random.Generator:
    """A fresh PCG64 generator for ``(stream, *keys)`` of ``seed``."""
    return np.random.Generator(np.random.PCG64(seed_sequence(seed, stream, *keys)))
