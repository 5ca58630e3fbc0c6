"""The fleetcare wire contract: topics, payload models and their encoding.

One definition, imported by the device SDK, the gateway, the simulator and the ingest.
``docs/protocol.md`` is the same contract in words, for implementers in other languages.

* :mod:`device_sdk.wire.topics`: ``{root}/v1/{device_id}/{channel}``, ``parse_topic``.
* :mod:`device_sdk.wire.payloads`: the pydantic models (schema version 1) and size limits.
* :mod:`device_sdk.wire.codec`: JSON encoding, the fast batch decoder for the ingest.
"""

from device_sdk._errors import PayloadError, TopicError, WireError
from device_sdk.wire.codec import (
    DecodedBatch,
    decode_batch,
    decode_model,
    encode_batch,
    encode_model,
)
from device_sdk.wire.payloads import (
    MAX_BATCH_ENTRIES,
    MAX_PAYLOAD_BYTES,
    SCHEMA_VERSION,
    AnyBatch,
    BatchKind,
    CommandReply,
    CommandRequest,
    DesiredConfig,
    EventBatch,
    EventEntry,
    Health,
    ReadingEntry,
    ReplyStatus,
    ReportedConfig,
    ReportStatus,
    Severity,
    StateMessage,
    TelemetryBatch,
    UsageBatch,
    UsageEntry,
    batch_adapter,
)
from device_sdk.wire.topics import (
    BATCH_CHANNELS,
    DEFAULT_ROOT,
    DOWNLINK_CHANNELS,
    TOPIC_VERSION,
    UPLINK_CHANNELS,
    Channel,
    Direction,
    TopicParts,
    build_topic,
    parse_topic,
    subscription,
    validate_device_id,
    validate_root,
)

__all__ = [
    "BATCH_CHANNELS",
    "DEFAULT_ROOT",
    "DOWNLINK_CHANNELS",
    "MAX_BATCH_ENTRIES",
    "MAX_PAYLOAD_BYTES",
    "SCHEMA_VERSION",
    "TOPIC_VERSION",
    "UPLINK_CHANNELS",
    "AnyBatch",
    "BatchKind",
    "Channel",
    "CommandReply",
    "CommandRequest",
    "DecodedBatch",
    "DesiredConfig",
    "Direction",
    "EventBatch",
    "EventEntry",
    "Health",
    "PayloadError",
    "ReadingEntry",
    "ReplyStatus",
    "ReportStatus",
    "ReportedConfig",
    "Severity",
    "StateMessage",
    "TelemetryBatch",
    "TopicError",
    "TopicParts",
    "UsageBatch",
    "UsageEntry",
    "WireError",
    "batch_adapter",
    "build_topic",
    "decode_batch",
    "decode_model",
    "encode_batch",
    "encode_model",
    "parse_topic",
    "subscription",
    "validate_device_id",
    "validate_root",
]
