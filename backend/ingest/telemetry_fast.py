"""The ingest's fast path for telemetry batches: one typed msgspec pass, columns out.

The wire contract's :func:`device_sdk.wire.decode_batch` parses with orjson, then checks every
value of every reading in a Python loop; for the common 50-reading, 8-metric batch that loop
costs as much as the parse. Here msgspec parses into typed structures and checks types, ranges
and sizes in the same pass in C (metric values become ``float`` or ``None``, integers are
converted as the contract does); what is left to Python is per message (device and boot
patterns) or per batch (the metric names), never per value. The result is a
:class:`TelemetryColumns`: sequence numbers, times and metric objects as three lists, which is
what the COPY rows are packed from.

:func:`decode_telemetry` accepts only payloads that ``decode_batch`` accepts, with equal
content; for anything else it answers ``None`` without saying why, and the caller runs
``decode_batch``, which names the problem. Readings that carry an uptime (``u``, sent by a
device whose clock is not synchronised) also take that path.
``tests/ingest/test_telemetry_fast.py`` holds the two paths to the same answers on generated
payloads.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from itertools import chain
from operator import itemgetter
from typing import Annotated

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

__all__ = ["TelemetryColumns", "decode_telemetry"]

_Seq = Annotated[int, msgspec.Meta(ge=0, le=MAX_SEQ)]
_TimeMs = Annotated[int, msgspec.Meta(ge=0, le=MAX_TIME_MS)]
_Metrics = Annotated[
    dict[str, float | None], msgspec.Meta(min_length=1, max_length=MAX_METRICS_PER_READING)
]


class _Reading(msgspec.Struct, forbid_unknown_fields=True):
    seq: _Seq
    t: _TimeMs
    m: _Metrics


class _Batch(msgspec.Struct, forbid_unknown_fields=True):
    v: int
    device: str
    kind: str
    boot: str
    sent: _TimeMs
    entries: Annotated[list[_Reading], msgspec.Meta(min_length=1, max_length=MAX_BATCH_ENTRIES)]
    up: _TimeMs | None = None
    dropped: _Seq = 0


_DECODER = msgspec.json.Decoder(_Batch)
_DEVICE = re.compile(DEVICE_ID_PATTERN)
_BOOT = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_TELEMETRY = BatchKind.TELEMETRY.value
_SEQ = itemgetter("seq")
_TIME = itemgetter("t")
_METRICS = itemgetter("m")


@dataclass(frozen=True, slots=True)
class TelemetryColumns:
    """A validated telemetry batch as columns, in the order of its readings.

    Attributes:
        device: the device id in the payload.
        sent: the batch's send time (ms).
        seqs / times: each reading's sequence number and time (ms).
        metrics: each reading's metrics (``float`` or ``None`` values).
    """

    device: str
    sent: int
    seqs: list[int]
    times: list[int]
    metrics: list[dict[str, float | None]]

    @classmethod
    def of_batch(cls, batch: DecodedBatch) -> TelemetryColumns:
        """The columns of a batch the wire contract decoded."""
        entries = batch.entries
        return cls(
            device=batch.device,
            sent=batch.sent,
            seqs=list(map(_SEQ, entries)),
            times=list(map(_TIME, entries)),
            metrics=list(map(_METRICS, entries)),
        )


def decode_telemetry(payload: bytes | bytearray | memoryview) -> TelemetryColumns | None:
    """The validated telemetry batch, or ``None`` when ``decode_batch`` must decide.

    The caller checks the payload's size first, as ``decode_batch`` does.
    """
    try:
        batch = _DECODER.decode(payload)
    except (msgspec.DecodeError, ValueError):  # ValidationError; invalid UTF-8
        return None
    if (
        batch.kind != _TELEMETRY
        or type(batch.v) is not int
        or batch.v != SCHEMA_VERSION
        or _DEVICE.fullmatch(batch.device) is None
        or _BOOT.fullmatch(batch.boot) is None
    ):
        return None
    readings = batch.entries
    metrics = [reading.m for reading in readings]
    if not all(map(valid_name, set(chain.from_iterable(metrics)))):
        return None
    return TelemetryColumns(
        device=batch.device,
        sent=batch.sent,
        seqs=[reading.seq for reading in readings],
        times=[reading.t for reading in readings],
        metrics=metrics,
    )
