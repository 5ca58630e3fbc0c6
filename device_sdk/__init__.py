"""fleetcare device SDK: a device client that never loses a reading.

Bounded, durable, observable and duplicate-safe: every ``record()`` is appended to an
on-disk queue before it returns, published in batches with MQTT QoS 1, and removed only
after the broker acknowledged it. See ``docs/device-sdk.md``.

Public surface:

* :class:`DeviceClient` / :class:`AsyncDeviceClient`, configured by :class:`DeviceConfig`
  (and :class:`TlsConfig`);
* :class:`Health`, the SDK's own health snapshot;
* :class:`Command` and :class:`DesiredConfig`, what down-link handlers receive;
* the exception tree rooted at :class:`SdkError`;
* :mod:`device_sdk.wire` (the wire contract) and :mod:`device_sdk.queue` (the durable queue).
"""

from typing import TYPE_CHECKING, Any

from device_sdk._client import DeviceClient
from device_sdk._config import DeviceConfig, Durability, TlsConfig
from device_sdk._core import DROPPED_EVENT
from device_sdk._downlink import CommandHandler, ConfigHandler
from device_sdk._entries import Reading
from device_sdk._errors import (
    ClientStateError,
    ConfigError,
    ConnectTimeoutError,
    FlushTimeoutError,
    InvalidInputError,
    PayloadError,
    QueueClosedError,
    QueueError,
    QueueLockedError,
    SdkError,
    TopicError,
    UnknownMetricError,
    WireError,
)
from device_sdk._version import __version__
from device_sdk.wire.payloads import CommandRequest as Command
from device_sdk.wire.payloads import DesiredConfig, Health, ReplyStatus, ReportStatus, Severity

if TYPE_CHECKING:
    from device_sdk._aio import AsyncDeviceClient


def __getattr__(name: str) -> Any:
    # AsyncDeviceClient is imported on first use: asyncio costs ~3 MiB of RSS that a
    # synchronous device program does not need.
    if name == "AsyncDeviceClient":
        from device_sdk._aio import AsyncDeviceClient

        return AsyncDeviceClient
    raise AttributeError(f"module 'device_sdk' has no attribute {name!r}")


__all__ = [
    "DROPPED_EVENT",
    "AsyncDeviceClient",
    "ClientStateError",
    "Command",
    "CommandHandler",
    "ConfigError",
    "ConfigHandler",
    "ConnectTimeoutError",
    "DesiredConfig",
    "DeviceClient",
    "DeviceConfig",
    "Durability",
    "FlushTimeoutError",
    "Health",
    "InvalidInputError",
    "PayloadError",
    "QueueClosedError",
    "QueueError",
    "QueueLockedError",
    "Reading",
    "ReplyStatus",
    "ReportStatus",
    "SdkError",
    "Severity",
    "TlsConfig",
    "TopicError",
    "UnknownMetricError",
    "WireError",
    "__version__",
]
