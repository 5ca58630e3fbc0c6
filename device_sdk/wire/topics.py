"""The fleetcare topic layout: ``{root}/v1/{device_id}/{channel}``.

``root`` defaults to ``fleetcare`` and may have several levels (``acme/plant-3``).
Channels are fixed by the protocol version; see ``docs/protocol.md``.

>>> build_topic("pump-0042", Channel.TELEMETRY)
'fleetcare/v1/pump-0042/telemetry'
>>> root, version, device_id, channel = parse_topic("acme/site-3/v1/pump-0042/commands/reply")
>>> (root, version, device_id, channel.value)
('acme/site-3', 1, 'pump-0042', 'commands/reply')
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import NamedTuple

from device_sdk._errors import TopicError

__all__ = [
    "BATCH_CHANNELS",
    "DEFAULT_ROOT",
    "DEVICE_ID_PATTERN",
    "DOWNLINK_CHANNELS",
    "TOPIC_VERSION",
    "UPLINK_CHANNELS",
    "Channel",
    "Direction",
    "TopicParts",
    "build_topic",
    "parse_topic",
    "subscription",
    "validate_device_id",
    "validate_root",
]

TOPIC_VERSION = 1
"""The version segment this SDK writes (``v1``)."""

DEFAULT_ROOT = "fleetcare"

DEVICE_ID_PATTERN = r"[A-Za-z0-9_.-]{1,64}"
"""Characters allowed in a device id (also the MQTT client id by default)."""

_DEVICE_ID = re.compile(DEVICE_ID_PATTERN)
_ROOT_LEVEL = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_VERSION_LEVEL = re.compile(r"v([1-9][0-9]{0,3})")


class Direction(StrEnum):
    UP = "up"
    """Device to backend."""
    DOWN = "down"
    """Backend to device."""


class Channel(StrEnum):
    """The last level(s) of a fleetcare topic."""

    TELEMETRY = "telemetry"
    USAGE = "usage"
    EVENTS = "events"
    STATE = "state"
    COMMANDS = "commands"
    COMMAND_REPLY = "commands/reply"
    CONFIG_DESIRED = "config/desired"
    CONFIG_REPORTED = "config/reported"

    @property
    def direction(self) -> Direction:
        return Direction.DOWN if self in _DOWN else Direction.UP

    @property
    def retained(self) -> bool:
        """Whether messages on this channel are published with the MQTT retain flag."""
        return self in _RETAINED


_DOWN = frozenset({Channel.COMMANDS, Channel.CONFIG_DESIRED})
_RETAINED = frozenset({Channel.STATE, Channel.CONFIG_DESIRED, Channel.CONFIG_REPORTED})

BATCH_CHANNELS: tuple[Channel, ...] = (Channel.TELEMETRY, Channel.USAGE, Channel.EVENTS)
"""Channels whose messages are batches of sequenced entries (deduplicated on (device, seq))."""
UPLINK_CHANNELS: tuple[Channel, ...] = tuple(c for c in Channel if c.direction is Direction.UP)
DOWNLINK_CHANNELS: tuple[Channel, ...] = tuple(c for c in Channel if c.direction is Direction.DOWN)

# Longest channels first, so "commands/reply" wins over a device called "commands".
_BY_LEVELS: tuple[tuple[tuple[str, ...], Channel], ...] = tuple(
    sorted(((tuple(c.value.split("/")), c) for c in Channel), key=lambda p: -len(p[0]))
)


class TopicParts(NamedTuple):
    """A parsed topic; unpacks as ``root, version, device_id, channel``."""

    root: str
    version: int
    device_id: str
    channel: Channel


def validate_device_id(device_id: str) -> str:
    """Return ``device_id`` if it matches ``[A-Za-z0-9_.-]{1,64}``, else raise ``TopicError``."""
    if not isinstance(device_id, str) or _DEVICE_ID.fullmatch(device_id) is None:
        raise TopicError(
            str(device_id), f"device id must match {DEVICE_ID_PATTERN} (letters, digits, _ . -)"
        )
    return device_id


def validate_root(root: str) -> str:
    """Return ``root`` if every level matches ``[A-Za-z0-9_.-]{1,64}`` and none looks like ``v1``.

    Wildcards (``+``, ``#``), empty levels and ``$``-prefixed roots are refused.
    """
    if not isinstance(root, str) or not root:
        raise TopicError(str(root), "topic root must be a non-empty string")
    levels = root.split("/")
    if len(levels) > 8:
        raise TopicError(root, "topic root has more than 8 levels")
    for level in levels:
        if _ROOT_LEVEL.fullmatch(level) is None:
            raise TopicError(root, f"root level {level!r} must match [A-Za-z0-9_.-]{{1,64}}")
        if _VERSION_LEVEL.fullmatch(level):
            raise TopicError(root, f"root level {level!r} looks like a protocol version")
    return root


def build_topic(device_id: str, channel: Channel | str, root: str = DEFAULT_ROOT) -> str:
    """The topic of ``channel`` for ``device_id``: ``{root}/v1/{device_id}/{channel}``."""
    validate_device_id(device_id)
    validate_root(root)
    return f"{root}/v{TOPIC_VERSION}/{device_id}/{Channel(channel).value}"


def subscription(channel: Channel | str, *, root: str = DEFAULT_ROOT, device_id: str = "+") -> str:
    """A subscription filter for ``channel``: every device (``+``) unless ``device_id`` is given.

    >>> subscription(Channel.TELEMETRY)
    'fleetcare/v1/+/telemetry'
    """
    if device_id != "+":
        validate_device_id(device_id)
    validate_root(root)
    return f"{root}/v{TOPIC_VERSION}/{device_id}/{Channel(channel).value}"


def parse_topic(topic: str) -> TopicParts:
    """Split a fleetcare topic into ``(root, version, device_id, channel)``.

    Any ``v<N>`` version level is parsed and returned; checking that it is supported is the
    caller's job (``version == TOPIC_VERSION``).

    Raises:
        TopicError: the topic does not follow the layout; ``reason`` says which part is wrong.
    """
    if not isinstance(topic, str) or not topic:
        raise TopicError(str(topic), "topic must be a non-empty string")
    levels = topic.split("/")
    for channel_levels, channel in _BY_LEVELS:
        n = len(channel_levels)
        if len(levels) < n + 3 or tuple(levels[-n:]) != channel_levels:
            continue
        version_level = levels[-n - 2]
        match = _VERSION_LEVEL.fullmatch(version_level)
        if match is None:
            raise TopicError(topic, f"expected a version level like 'v1', got {version_level!r}")
        device_id = levels[-n - 1]
        if _DEVICE_ID.fullmatch(device_id) is None:
            raise TopicError(topic, f"device id {device_id!r} must match {DEVICE_ID_PATTERN}")
        root = "/".join(levels[: -n - 2])
        try:
            validate_root(root)
        except TopicError as exc:
            raise TopicError(topic, exc.reason) from None
        return TopicParts(root, int(match.group(1)), device_id, channel)
    known = ", ".join(c.value for c in Channel)
    raise TopicError(
        topic, f"expected {{root}}/v1/{{device_id}}/{{channel}} with channel in: {known}"
    )
