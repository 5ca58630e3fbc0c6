"""The ingest's fast path for telemetry batches: one typed msgspec pass over the payload.

The wire contract's :func:`device_sdk.wire.decode_batch` parses with orjson, then checks every
value of every reading in a Python loop; for the common 50-reading, 8-metric batch that loop
costs as much as the parse. Here msgspec parses and checks the value types in one pass in C
(metric values become ``float`` or ``None``, integers are converted as the contract does), and
what is left to Python is per reading (seq and time ranges) or per batch (the metric names),
never per value.

:func:`decode_telemetry` accepts only payloads that ``decode_batch`` accepts, with an equal
result; for anything else it answers ``None`` without saying why, and the caller runs
``decode_batch``, which names the problem. Readings that carry an uptime (``u``, sent by a
device whose clock is not synchronised) also take that path. ``tests/ingest/
test_telemetry_fast.py`` holds the two paths to the same answers on generated payloads.
"""

from __future__ import annotations

import re
from itertools import chain
from operator import itemgetter
from typing import Any

import msgspec

from device_sdk.wire import BatchKind, DecodedBatch
from device_sdk.wire.codec import valid_name
from device_sdk.wire.payloads import (
    MAX_BATCH_ENTRIES,
    MAX_METRICS_PER_READING,
    MAX_SEQ,
    MAX_TIME_MS,
    SCHEMA_VERSION,
)
from device_sdk.wire.topics import DEVICE_ID_PATTERN

__all__ = ["decode_telemetry"]

# An entry's values are integers (seq, t), the metrics object, or null; anything else (a
# string, a list, a boolean, a float where an integer belongs) fails the typed parse.
_Entry = dict[str, int | dict[str, float | None] | None]
_Envelope = dict[str, int | str | list[_Entry] | None]
_DECODER = msgspec.json.Decoder(_Envelope)

_ENVELOPE_KEYS = frozenset({"v", "device", "kind", "boot", "sent", "up", "dropped", "entries"})
_DEVICE = re.compile(DEVICE_ID_PATTERN)
_BOOT = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_SEQ = itemgetter("seq")
_TIME = itemgetter("t")
_METRICS = itemgetter("m")
_INT = {int}
_DICT = {dict}
_THREE = {3}


def _in_range(values: list[Any], high: int) -> bool:
    """Whether every value is a plain ``int`` in ``[0, high]`` (``bool`` is not)."""
    return set(map(type, values)) == _INT and min(values) >= 0 and max(values) <= high


def _counter(value: object, high: int) -> bool:
    return type(value) is int and 0 <= value <= high


def decode_telemetry(payload: bytes | bytearray | memoryview) -> DecodedBatch | None:
    """The validated telemetry batch, or ``None`` when ``decode_batch`` must decide.

    The caller checks the payload's size first, as ``decode_batch`` does.
    """
    try:
        doc = _DECODER.decode(payload)
    except (msgspec.DecodeError, ValueError):  # ValidationError; invalid UTF-8
        return None
    if not doc.keys() <= _ENVELOPE_KEYS or doc.get("kind") != BatchKind.TELEMETRY.value:
        return None
    version, device, boot = doc.get("v"), doc.get("device"), doc.get("boot")
    sent, up, dropped = doc.get("sent"), doc.get("up"), doc.get("dropped", 0)
    if (
        type(version) is not int
        or version != SCHEMA_VERSION
        or type(device) is not str
        or _DEVICE.fullmatch(device) is None
        or type(boot) is not str
        or _BOOT.fullmatch(boot) is None
        or not _counter(sent, MAX_TIME_MS)
        or (up is not None and not _counter(up, MAX_TIME_MS))
        or not _counter(dropped, MAX_SEQ)
    ):
        return None
    entries = doc.get("entries")
    if type(entries) is not list or not 1 <= len(entries) <= MAX_BATCH_ENTRIES:
        return None
    # Exactly the keys seq, t and m in every reading: three keys, all three present.
    if set(map(len, entries)) != _THREE:
        return None
    try:
        seqs = list(map(_SEQ, entries))
        times = list(map(_TIME, entries))
        metrics = list(map(_METRICS, entries))
    except KeyError:
        return None
    if not _in_range(seqs, MAX_SEQ) or not _in_range(times, MAX_TIME_MS):
        return None
    if set(map(type, metrics)) != _DICT:
        return None
    sizes = list(map(len, metrics))
    if min(sizes) < 1 or max(sizes) > MAX_METRICS_PER_READING:
        return None
    if not all(map(valid_name, set(chain.from_iterable(metrics)))):
        return None
    assert type(sent) is int  # checked by _counter above
    assert type(dropped) is int
    return DecodedBatch(
        v=SCHEMA_VERSION,
        device=device,
        kind=BatchKind.TELEMETRY,
        boot=boot,
        sent=sent,
        up=up if type(up) is int else None,
        dropped=dropped,
        entries=entries,
    )
