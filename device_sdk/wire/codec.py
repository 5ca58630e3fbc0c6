"""Encoding and decoding of fleetcare payloads (JSON, UTF-8).

Two decode paths with the same rules:

* :func:`decode_model` validates any payload into its pydantic model (commands, config,
  state, and batches when speed does not matter).
* :func:`decode_batch` is the ingest's hot path for ``telemetry``/``usage``/``events``:
  ``orjson`` plus hand-written checks, returning validated plain dicts ready for a COPY
  (about twice the rate of the models for telemetry; see ``docs/benchmarks.md``).

:func:`encode_batch` builds a batch from pre-encoded entry bodies, which is how the SDK
and the gateway send what they read back from their durable queue without re-encoding it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, TypeVar

import orjson
from pydantic import BaseModel, ValidationError

from device_sdk._errors import PayloadError
from device_sdk.wire.payloads import (
    MAX_ATTRS,
    MAX_BATCH_ENTRIES,
    MAX_METRICS_PER_READING,
    MAX_PAYLOAD_BYTES,
    MAX_SEQ,
    MAX_TEXT,
    MAX_TIME_MS,
    NAME_PATTERN,
    SCHEMA_VERSION,
    BatchKind,
    Severity,
)
from device_sdk.wire.topics import DEVICE_ID_PATTERN

__all__ = [
    "DecodedBatch",
    "decode_batch",
    "decode_model",
    "encode_batch",
    "encode_model",
    "valid_name",
]

M = TypeVar("M", bound=BaseModel)

_NAME = re.compile(NAME_PATTERN)
_DEVICE = re.compile(DEVICE_ID_PATTERN)
_BOOT = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_ENVELOPE_KEYS = frozenset({"v", "device", "kind", "boot", "sent", "up", "dropped", "entries"})
_READING_KEYS = frozenset({"seq", "t", "u", "m"})
_USAGE_KEYS = frozenset({"seq", "t", "u", "name", "value", "unit", "dur", "attrs"})
_EVENT_KEYS = frozenset({"seq", "t", "u", "type", "severity", "code", "msg", "attrs"})
_SEVERITIES = frozenset(s.value for s in Severity)
_KINDS = {k.value: k for k in BatchKind}


@lru_cache(maxsize=8192)
def valid_name(name: str) -> bool:
    """Whether ``name`` is a valid metric / usage / event / attribute name (cached)."""
    return _NAME.fullmatch(name) is not None


def encode_model(message: BaseModel) -> bytes:
    """Encode any payload model as compact JSON, leaving out fields that are ``None``."""
    return orjson.dumps(message.model_dump(mode="json", exclude_none=True))


def encode_batch(
    *,
    device: str,
    kind: BatchKind,
    boot: str,
    sent: int,
    up: int | None,
    dropped: int,
    entries: Sequence[tuple[int, bytes]],
) -> bytes:
    """Build a batch envelope from ``(seq, body)`` pairs.

    ``body`` is the entry's JSON object *without* ``seq``, e.g. ``b'{"t":1,"m":{"x":1.0}}'``
    (as the SDK stores it on disk); ``seq`` is spliced in front. Nothing is re-validated:
    callers pass bodies they produced themselves from validated input.
    """
    header: dict[str, object] = {
        "v": SCHEMA_VERSION,
        "device": device,
        "kind": kind.value,
        "boot": boot,
        "sent": sent,
        "up": up,
        "dropped": dropped,
    }
    if up is None:
        del header["up"]
    head = orjson.dumps(header)
    parts = [b'{"seq":%d,%b' % (seq, body[1:]) for seq, body in entries]
    return b'%b,"entries":[%b]}' % (head[:-1], b",".join(parts))


def decode_model(payload: bytes | str, model: type[M]) -> M:
    """Validate ``payload`` (JSON) into ``model``; any problem raises :class:`PayloadError`."""
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise PayloadError(f"payload of {len(payload)} bytes exceeds {MAX_PAYLOAD_BYTES}")
    try:
        return model.model_validate_json(payload)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "payload"
        raise PayloadError(f"{where}: {first['msg']} ({exc.error_count()} problem(s))") from None


@dataclass(frozen=True, slots=True)
class DecodedBatch:
    """A validated batch from :func:`decode_batch`.

    ``entries`` are the decoded JSON objects, checked against the schema: every entry has
    ``seq`` and ``t``; optional keys may be absent (never wrong). Reading metric values are
    ``float`` or ``None``.
    """

    v: int
    device: str
    kind: BatchKind
    boot: str
    sent: int
    up: int | None
    dropped: int
    entries: list[dict[str, Any]]


def _fail(reason: str) -> PayloadError:
    return PayloadError(reason)


def _check_int(value: object, what: str, high: int) -> int:
    if type(value) is not int or value < 0 or value > high:
        raise _fail(f"{what} must be an integer in [0, {high}], got {value!r:.40}")
    return value


def _check_attrs(attrs: object, where: str) -> None:
    if type(attrs) is not dict:
        raise _fail(f"{where}.attrs must be an object")
    if len(attrs) > MAX_ATTRS:
        raise _fail(f"{where}.attrs has more than {MAX_ATTRS} keys")
    for key, value in attrs.items():
        if not valid_name(key):
            raise _fail(f"{where}.attrs key {key!r:.70} is not a valid name")
        kind = type(value)
        if kind is str:
            if len(value) > 256:
                raise _fail(f"{where}.attrs[{key}] is longer than 256 characters")
        elif kind is not int and kind is not float and kind is not bool:
            raise _fail(f"{where}.attrs[{key}] must be a string, number or boolean")


def _check_text(value: object, what: str, low: int, high: int) -> None:
    if type(value) is not str or not low <= len(value) <= high:
        raise _fail(f"{what} must be a string of {low} to {high} characters")


def _check_reading(entry: dict[str, Any], where: str) -> None:
    if not entry.keys() <= _READING_KEYS:
        raise _fail(f"{where} has unknown keys {sorted(entry.keys() - _READING_KEYS)}")
    metrics = entry.get("m")
    if type(metrics) is not dict or not 1 <= len(metrics) <= MAX_METRICS_PER_READING:
        raise _fail(f"{where}.m must be an object with 1 to {MAX_METRICS_PER_READING} metrics")
    for name, value in metrics.items():
        kind = type(value)
        if kind is float or value is None:
            pass
        elif kind is int:
            metrics[name] = float(value)
        else:
            raise _fail(f"{where}.m[{name!r:.70}] must be a number or null")
        if not valid_name(name):
            raise _fail(f"{where}.m key {name!r:.70} is not a valid metric name")


def _check_usage(entry: dict[str, Any], where: str) -> None:
    if not entry.keys() <= _USAGE_KEYS:
        raise _fail(f"{where} has unknown keys {sorted(entry.keys() - _USAGE_KEYS)}")
    name = entry.get("name")
    if type(name) is not str or not valid_name(name):
        raise _fail(f"{where}.name must be a valid name")
    value = entry.get("value")
    if value is not None:
        if type(value) is int:
            entry["value"] = float(value)
        elif type(value) is not float:
            raise _fail(f"{where}.value must be a number or null")
    unit = entry.get("unit")
    if unit is not None:
        _check_text(unit, f"{where}.unit", 1, 32)
    dur = entry.get("dur")
    if dur is not None:
        if type(dur) is int:
            entry["dur"] = dur = float(dur)
        if type(dur) is not float or dur < 0:
            raise _fail(f"{where}.dur must be a non-negative number or null")
    if "attrs" in entry:
        _check_attrs(entry["attrs"], where)


def _check_event(entry: dict[str, Any], where: str) -> None:
    if not entry.keys() <= _EVENT_KEYS:
        raise _fail(f"{where} has unknown keys {sorted(entry.keys() - _EVENT_KEYS)}")
    kind = entry.get("type")
    if type(kind) is not str or not valid_name(kind):
        raise _fail(f"{where}.type must be a valid name")
    severity = entry.get("severity", "info")
    if severity not in _SEVERITIES:
        raise _fail(f"{where}.severity must be one of {sorted(_SEVERITIES)}")
    if entry.get("code") is not None:
        _check_text(entry["code"], f"{where}.code", 1, 64)
    if entry.get("msg") is not None:
        _check_text(entry["msg"], f"{where}.msg", 0, MAX_TEXT)
    if "attrs" in entry:
        _check_attrs(entry["attrs"], where)


def _check_readings(entries: list[Any]) -> None:
    """The telemetry hot path: the rules of ``_check_entry`` + ``_check_reading``, inlined.

    Metric names are checked once per batch (they repeat), errors are formatted only when
    one is found.
    """
    seen: set[str] = set()
    for position, entry in enumerate(entries):
        if type(entry) is not dict:
            raise _fail(f"entries[{position}] must be an object")
        seq = entry.get("seq")
        if type(seq) is not int or not 0 <= seq <= MAX_SEQ:
            raise _fail(f"entries[{position}].seq must be an integer in [0, 2^63-1]")
        t = entry.get("t")
        if type(t) is not int or not 0 <= t <= MAX_TIME_MS:
            raise _fail(f"entries[{position}].t must be an integer in [0, 2^53-1]")
        size = len(entry)
        if size == 4 and "u" in entry:
            u = entry["u"]
            if u is not None and (type(u) is not int or not 0 <= u <= MAX_TIME_MS):
                raise _fail(f"entries[{position}].u must be an integer in [0, 2^53-1] or null")
        elif size != 3:
            _check_reading(entry, f"entries[{position}]")  # raises: unknown or missing keys
        metrics = entry.get("m")
        if type(metrics) is not dict or not 0 < len(metrics) <= MAX_METRICS_PER_READING:
            raise _fail(
                f"entries[{position}].m must be an object with 1 to "
                f"{MAX_METRICS_PER_READING} metrics"
            )
        for name, value in metrics.items():
            if type(value) is not float and value is not None:
                if type(value) is not int:
                    raise _fail(f"entries[{position}].m[{name!r:.70}] must be a number or null")
                metrics[name] = float(value)
            if name not in seen:
                if not valid_name(name):
                    raise _fail(f"entries[{position}].m key {name!r:.70} is not a valid name")
                seen.add(name)


def _check_entries(entries: list[Any], check: Callable[[dict[str, Any], str], None]) -> None:
    for position, entry in enumerate(entries):
        if type(entry) is not dict:
            raise _fail(f"entries[{position}] must be an object")
        seq = entry.get("seq")
        if type(seq) is not int or not 0 <= seq <= MAX_SEQ:
            raise _fail(f"entries[{position}].seq must be an integer in [0, 2^63-1]")
        t = entry.get("t")
        if type(t) is not int or not 0 <= t <= MAX_TIME_MS:
            raise _fail(f"entries[{position}].t must be an integer in [0, 2^53-1]")
        u = entry.get("u")
        if u is not None and (type(u) is not int or not 0 <= u <= MAX_TIME_MS):
            raise _fail(f"entries[{position}].u must be an integer in [0, 2^53-1] or null")
        check(entry, f"entries[{position}]")


def decode_batch(
    payload: bytes | bytearray | memoryview | str,
    *,
    device_id: str | None = None,
    kind: BatchKind | str | None = None,
) -> DecodedBatch:
    """Decode and validate a ``telemetry``/``usage``/``events`` batch (the fast path).

    Args:
        payload: the MQTT payload.
        device_id: when given (from the topic), the envelope's ``device`` must equal it.
        kind: when given (from the topic's channel), the envelope's ``kind`` must equal it.

    Raises:
        PayloadError: the first problem found; nothing is returned for a bad batch.
    """
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise _fail(f"payload of {len(payload)} bytes exceeds {MAX_PAYLOAD_BYTES}")
    try:
        doc = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        raise _fail(f"not JSON: {exc}") from None
    if type(doc) is not dict:
        raise _fail("payload must be a JSON object")
    if not doc.keys() <= _ENVELOPE_KEYS:
        raise _fail(f"unknown envelope keys {sorted(doc.keys() - _ENVELOPE_KEYS)}")
    if doc.get("v") != SCHEMA_VERSION or type(doc.get("v")) is not int:
        raise _fail(f"unsupported schema version v={doc.get('v')!r:.20} (expected 1)")
    device = doc.get("device")
    if type(device) is not str or _DEVICE.fullmatch(device) is None:
        raise _fail(f"device must match {DEVICE_ID_PATTERN}")
    if device_id is not None and device != device_id:
        raise _fail(f"device {device!r} does not match the topic's device {device_id!r}")
    raw_kind = doc.get("kind")
    batch_kind = _KINDS.get(raw_kind) if type(raw_kind) is str else None
    if batch_kind is None:
        raise _fail(f"kind must be one of {sorted(_KINDS)}")
    if kind is not None and batch_kind != kind:
        raise _fail(f"kind {batch_kind.value!r} does not match the topic's channel {kind!r}")
    boot = doc.get("boot")
    if type(boot) is not str or _BOOT.fullmatch(boot) is None:
        raise _fail("boot must match [A-Za-z0-9_.-]{1,64}")
    sent = _check_int(doc.get("sent"), "sent", MAX_TIME_MS)
    up = doc.get("up")
    if up is not None:
        _check_int(up, "up", MAX_TIME_MS)
    dropped = _check_int(doc.get("dropped", 0), "dropped", MAX_SEQ)
    entries = doc.get("entries")
    if type(entries) is not list or not 1 <= len(entries) <= MAX_BATCH_ENTRIES:
        raise _fail(f"entries must be a list of 1 to {MAX_BATCH_ENTRIES} objects")
    if batch_kind is BatchKind.TELEMETRY:
        _check_readings(entries)
    elif batch_kind is BatchKind.USAGE:
        _check_entries(entries, _check_usage)
    else:
        _check_entries(entries, _check_event)
    return DecodedBatch(
        v=SCHEMA_VERSION,
        device=device,
        kind=batch_kind,
        boot=boot,
        sent=sent,
        up=up,
        dropped=dropped,
        entries=entries,
    )
