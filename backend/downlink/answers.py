"""Devices' answers taken apart and checked: which device, which message, or why refused.

A device may speak only for itself: the ``device`` of a payload must be the device of its
topic (the broker's ACL already keeps a device to its own topics), and a reply counts only
for a command of that device.
"""

from __future__ import annotations

from dataclasses import dataclass

from device_sdk.wire import (
    TOPIC_VERSION,
    Channel,
    CommandReply,
    PayloadError,
    ReportedConfig,
    TopicError,
    decode_model,
    parse_topic,
)


@dataclass(frozen=True, slots=True)
class DecodedAnswer:
    device_ref: str
    message: CommandReply | ReportedConfig


@dataclass(frozen=True, slots=True)
class RefusedAnswer:
    """Why an answer cannot be stored; kept as a dead letter with ``reason``."""

    reason: str
    detail: str
    device_ref: str | None = None


def decode_answer(topic: str, payload: bytes, root: str) -> DecodedAnswer | RefusedAnswer:
    try:
        parts = parse_topic(topic)
    except TopicError as exc:
        return RefusedAnswer("bad_topic", exc.reason)
    if parts.root != root or parts.version != TOPIC_VERSION:
        return RefusedAnswer("bad_topic", f"expected {root}/v{TOPIC_VERSION}/…", parts.device_id)
    model: type[CommandReply] | type[ReportedConfig]
    if parts.channel is Channel.COMMAND_REPLY:
        model = CommandReply
    elif parts.channel is Channel.CONFIG_REPORTED:
        if not payload:  # a retained report cleared by the broker's admin: nothing to store
            return RefusedAnswer("empty", "empty retained report", parts.device_id)
        model = ReportedConfig
    else:
        return RefusedAnswer(
            "bad_topic", f"channel {parts.channel.value} is not an answer", parts.device_id
        )
    try:
        message = decode_model(payload, model)
    except PayloadError as exc:
        return RefusedAnswer("invalid_payload", exc.reason, parts.device_id)
    if message.device != parts.device_id:
        return RefusedAnswer(
            "device_mismatch",
            f"payload speaks for {message.device!r} on {parts.device_id!r}'s topic",
            parts.device_id,
        )
    return DecodedAnswer(parts.device_id, message)
