"""Pydantic models of every fleetcare payload (schema version 1).

These models are the reference definition of the payloads; ``docs/protocol.md`` describes
the same thing for implementers in other languages. Validation is strict: no type coercion
(``"1"`` is not a number, ``true`` is not a number), no NaN or infinity, unknown fields
refused, sizes bounded. For the ingest's hot path, :func:`device_sdk.wire.codec.decode_batch`
applies the same rules on ``orjson`` output without building model objects.

Times are integers: milliseconds since the Unix epoch (UTC) on the device's clock, sent as
the device has it. ``u`` and ``up`` are milliseconds on the device's monotonic clock of boot
``boot``; with the backend's receive time they let the ingest correct a wrong device clock
(see ``docs/protocol.md``, "Clocks").
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue, StringConstraints, TypeAdapter

from device_sdk.wire.topics import DEVICE_ID_PATTERN

__all__ = [
    "MAX_ATTRS",
    "MAX_BATCH_ENTRIES",
    "MAX_METRICS_PER_READING",
    "MAX_PAYLOAD_BYTES",
    "MAX_SEQ",
    "MAX_TEXT",
    "MAX_TIME_MS",
    "NAME_PATTERN",
    "SCHEMA_VERSION",
    "AnyBatch",
    "BatchKind",
    "CommandReply",
    "CommandRequest",
    "DesiredConfig",
    "EventBatch",
    "EventEntry",
    "Health",
    "ReadingEntry",
    "ReplyStatus",
    "ReportStatus",
    "ReportedConfig",
    "Severity",
    "StateMessage",
    "TelemetryBatch",
    "UsageBatch",
    "UsageEntry",
    "batch_adapter",
]

SCHEMA_VERSION = 1
"""Value of the ``v`` field of every payload this SDK writes."""

MAX_BATCH_ENTRIES = 5_000
MAX_METRICS_PER_READING = 256
MAX_ATTRS = 32
MAX_TEXT = 1_024
MAX_PAYLOAD_BYTES = 256 * 1024
"""Largest payload a conforming sender produces and a conforming receiver must accept."""
MAX_SEQ = 2**63 - 1
MAX_TIME_MS = 2**53 - 1
"""Largest time or uptime value (ms): the largest integer a double holds exactly."""

NAME_PATTERN = r"[A-Za-z_][A-Za-z0-9_.:-]{0,63}"
"""Metric names, usage names, event types, attribute keys."""

_STRICT = ConfigDict(extra="forbid", frozen=True, strict=True)

Version = Annotated[int, Field(ge=SCHEMA_VERSION, le=SCHEMA_VERSION)]
"""The schema version field ``v`` (strict: ``true`` is not ``1``)."""
Seq = Annotated[int, Field(ge=0, le=MAX_SEQ)]
TimeMs = Annotated[int, Field(ge=0, le=MAX_TIME_MS)]
Count = Annotated[int, Field(ge=0, le=MAX_SEQ)]
FiniteFloat = Annotated[float, Field(allow_inf_nan=False)]
Name = Annotated[str, StringConstraints(pattern=f"^{NAME_PATTERN}$")]
DeviceId = Annotated[str, StringConstraints(pattern=f"^{DEVICE_ID_PATTERN}$")]
BootId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.-]{1,64}$")]
MessageId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.:-]{1,64}$")]
Text = Annotated[str, StringConstraints(max_length=MAX_TEXT)]
ShortText = Annotated[str, StringConstraints(min_length=1, max_length=64)]
AttrValue = Annotated[str, StringConstraints(max_length=256)] | bool | int | FiniteFloat
Attrs = Annotated[dict[Name, AttrValue], Field(max_length=MAX_ATTRS)]
JsonObject = dict[str, JsonValue]


class BatchKind(StrEnum):
    """The ``kind`` of a batch envelope; equal to the channel it is published on."""

    TELEMETRY = "telemetry"
    USAGE = "usage"
    EVENTS = "events"


class Severity(StrEnum):
    DEBUG = "debug"
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"
    CRITICAL = "critical"


class ReplyStatus(StrEnum):
    OK = "ok"
    """The handler ran and returned ``result``."""
    ERROR = "error"
    """The handler raised; ``error`` says what."""
    UNKNOWN = "unknown"
    """No handler is registered for this command name."""
    INVALID = "invalid"
    """The command payload did not validate."""
    BUSY = "busy"
    """The device's bounded command queue was full; retry later."""


class ReportStatus(StrEnum):
    APPLIED = "applied"
    REJECTED = "rejected"


class ReadingEntry(BaseModel):
    """One reading: one timestamp, one or many metrics (``null`` = metric unavailable)."""

    model_config = _STRICT
    seq: Seq
    t: TimeMs
    u: TimeMs | None = None
    m: Annotated[
        dict[Name, FiniteFloat | None], Field(min_length=1, max_length=MAX_METRICS_PER_READING)
    ]


class UsageEntry(BaseModel):
    """One usage record: a session, a feature use, a duty cycle, an operating-hours counter."""

    model_config = _STRICT
    seq: Seq
    t: TimeMs
    u: TimeMs | None = None
    name: Name
    value: FiniteFloat | None = None
    unit: Annotated[str, StringConstraints(min_length=1, max_length=32)] | None = None
    dur: Annotated[float, Field(ge=0, allow_inf_nan=False)] | None = None
    attrs: Attrs = Field(default_factory=dict)


class EventEntry(BaseModel):
    """One device event: a fault, an error, maintenance, a reboot, ..."""

    model_config = _STRICT
    seq: Seq
    t: TimeMs
    u: TimeMs | None = None
    type: Name
    severity: Severity = Severity.INFO
    code: ShortText | None = None
    msg: Text | None = None
    attrs: Attrs = Field(default_factory=dict)


class _Envelope(BaseModel):
    model_config = _STRICT
    v: Version
    device: DeviceId
    boot: BootId
    sent: TimeMs
    up: TimeMs | None = None
    dropped: Count = 0


class TelemetryBatch(_Envelope):
    kind: Literal[BatchKind.TELEMETRY]
    entries: Annotated[list[ReadingEntry], Field(min_length=1, max_length=MAX_BATCH_ENTRIES)]


class UsageBatch(_Envelope):
    kind: Literal[BatchKind.USAGE]
    entries: Annotated[list[UsageEntry], Field(min_length=1, max_length=MAX_BATCH_ENTRIES)]


class EventBatch(_Envelope):
    kind: Literal[BatchKind.EVENTS]
    entries: Annotated[list[EventEntry], Field(min_length=1, max_length=MAX_BATCH_ENTRIES)]


AnyBatch = Annotated[TelemetryBatch | UsageBatch | EventBatch, Field(discriminator="kind")]


def batch_adapter() -> TypeAdapter[TelemetryBatch | UsageBatch | EventBatch]:
    """A ``TypeAdapter`` that validates any batch, choosing the model by ``kind``."""
    return TypeAdapter(AnyBatch)


class Health(BaseModel):
    """The SDK's own health: returned by ``client.health()`` and sent in ``state`` messages."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    connected: bool
    """A broker session is up right now."""
    broker: str | None = None
    """The broker URL in use (never with credentials)."""
    protocol: Literal["MQTTv5", "MQTTv311"] | None = None
    queued: Count
    """Entries on disk not yet acknowledged by the broker (includes ``in_flight``)."""
    in_flight: Count
    """Entries published and waiting for their PUBACK."""
    sent: Count
    """Entries acknowledged by the broker since this client started."""
    recorded: Count
    """Entries accepted by ``record``/``usage``/``event`` since this client started."""
    dropped: Count
    """Entries dropped by the queue's bound since the queue was created (persisted)."""
    reconnects: Count
    """Successful connections after the first one, since this client started."""
    connect_failures: Count
    unrouted: Count = 0
    """MQTT 5 batches the broker had no subscriber for (reason 0x10), held and sent again."""
    oldest_unsent_age_s: Annotated[float, Field(ge=0)] | None = None
    """Age of the oldest unacknowledged entry (time since it was queued); ``None`` if empty."""
    queue_bytes: Count
    queue_max_bytes: Count
    queue_fill: Annotated[float, Field(ge=0)]
    """``queue_bytes / queue_max_bytes``: at 1.0 the oldest entries are being dropped."""
    last_seq: Seq | None = None
    last_error: str | None = None


class StateMessage(BaseModel):
    """Published retained on ``state``: periodically while online, and as the last will."""

    model_config = _STRICT
    v: Version
    device: DeviceId
    kind: Literal["state"] = "state"
    boot: BootId
    sent: TimeMs
    up: TimeMs | None = None
    online: bool
    health: Health | None = None
    sdk: ShortText | None = None


class CommandRequest(BaseModel):
    """Backend to device on ``commands``."""

    model_config = _STRICT
    v: Version
    id: MessageId
    name: Name
    args: JsonObject = Field(default_factory=dict)
    sent: TimeMs | None = None


class CommandReply(BaseModel):
    """Device to backend on ``commands/reply``."""

    model_config = _STRICT
    v: Version
    device: DeviceId
    id: MessageId
    status: ReplyStatus
    result: JsonObject | None = None
    error: Text | None = None
    t: TimeMs


class DesiredConfig(BaseModel):
    """Backend to device, retained, on ``config/desired``: the configuration it should run."""

    model_config = _STRICT
    v: Version
    version: Count
    config: JsonObject
    sent: TimeMs | None = None


class ReportedConfig(BaseModel):
    """Device to backend, retained, on ``config/reported``: what it applied (or refused)."""

    model_config = _STRICT
    v: Version
    device: DeviceId
    version: Count
    status: ReportStatus
    config: JsonObject | None = None
    error: Text | None = None
    t: TimeMs
