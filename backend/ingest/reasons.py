"""Why a message was dead-lettered: the reasons are a contract (metrics labels, ``dlq`` filters)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Reason(StrEnum):
    """The ``reason`` column of ``dead_letters``; one label value of the rejection metrics."""

    MALFORMED = "malformed"
    """Not UTF-8 JSON, or not a JSON object."""
    NON_FINITE = "non_finite"
    """A number is NaN, infinite or too large for a double (JSON with NaN/Infinity/1e999)."""
    SCHEMA = "schema"
    """Valid JSON that breaks the payload schema (missing or extra field, wrong type, …)."""
    TOO_LARGE = "too_large"
    """The payload is larger than ``max_payload_bytes``."""
    BAD_TOPIC = "bad_topic"
    """The topic is not ``{root}/v1/{device}/{channel}`` with an uplink channel ingest reads."""
    DEVICE_MISMATCH = "device_mismatch"
    """The payload's ``device`` differs from the topic's device id."""
    KIND_MISMATCH = "kind_mismatch"
    """The payload's ``kind`` differs from the topic's channel."""
    UNKNOWN_DEVICE = "unknown_device"
    """No device with this external id is registered."""
    DECOMMISSIONED_DEVICE = "decommissioned_device"
    """The device is registered with status ``decommissioned``."""
    UNKNOWN_METRIC = "unknown_metric"
    """A metric is not in the device model's catalogue (or not registered at all)."""
    TIMESTAMP_FUTURE = "timestamp_future"
    """An entry is time-stamped more than ``max_future_s`` ahead of the server clock."""
    TIMESTAMP_PAST = "timestamp_past"
    """An entry is older than ``max_past_s``."""
    WRITE_ERROR = "write_error"
    """The database refused the message's rows (found by splitting the batch); see detail."""


@dataclass(frozen=True, slots=True)
class Rejection:
    """A message refused as a whole, with the reason and a detail for a person."""

    reason: Reason
    detail: str
    device_ref: str | None = None
