"""The exception tree of ``device_sdk``: every error the SDK raises derives from ``SdkError``.

Errors carry data (the field, the topic, the count left) so a caller can act on them
without parsing messages. Errors from dependencies (paho, pydantic, the OS) are
translated at the boundary where they occur.
"""

from __future__ import annotations


class SdkError(Exception):
    """Base class of every error raised by ``device_sdk``."""


class ConfigError(SdkError):
    """A ``DeviceConfig`` (or another SDK setting) is invalid.

    Attributes:
        problems: one ``(field, message)`` pair per invalid setting.
    """

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        self.problems = problems
        lines = "\n".join(f"  {name}: {message}" for name, message in problems)
        super().__init__(f"invalid device_sdk configuration:\n{lines}")


class InvalidInputError(SdkError, ValueError):
    """``record()``, ``usage()`` or ``event()`` was given something it cannot send.

    Nothing was queued when this is raised (a batch is accepted or refused as a whole).

    Attributes:
        field: what was wrong, e.g. ``"metrics['temp_c']"`` or ``"readings[12].at"``.
        reason: why, in words.
    """

    def __init__(self, field: str, reason: str) -> None:
        self.field = field
        self.reason = reason
        super().__init__(f"{field}: {reason}")


class UnknownMetricError(InvalidInputError):
    """A metric name is not in the configured ``metric_catalogue``."""


class WireError(SdkError, ValueError):
    """A topic or payload does not follow the fleetcare wire contract."""


class TopicError(WireError):
    """A topic is not a valid fleetcare topic.

    Attributes:
        topic: the topic that was given.
        reason: why it was refused.
    """

    def __init__(self, topic: str, reason: str) -> None:
        self.topic = topic
        self.reason = reason
        super().__init__(f"invalid fleetcare topic {topic!r}: {reason}")


class PayloadError(WireError):
    """A payload does not decode to a valid fleetcare message.

    Attributes:
        reason: why it was refused (the first problem found).
    """

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(f"invalid fleetcare payload: {reason}")


class QueueError(SdkError):
    """The durable queue could not be opened, read or written."""


class QueueLockedError(QueueError):
    """Another process (or another queue object) holds the queue directory.

    Attributes:
        path: the queue directory.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        super().__init__(f"queue directory {path} is in use by another DurableQueue")


class QueueClosedError(QueueError):
    """The queue (or the client that owns it) is closed."""


class ClientStateError(SdkError):
    """The client is not in a state that allows the call (e.g. ``record()`` before ``start()``)."""


class FlushTimeoutError(SdkError, TimeoutError):
    """``flush()`` returned before every queued entry was acknowledged by the broker.

    Attributes:
        remaining: entries still waiting for a broker acknowledgement.
        timeout: the timeout that passed, in seconds.
    """

    def __init__(self, remaining: int, timeout: float) -> None:
        self.remaining = remaining
        self.timeout = timeout
        super().__init__(f"{remaining} entries still unacknowledged after {timeout:.1f} s")


class ConnectTimeoutError(SdkError, TimeoutError):
    """``wait_connected()`` timed out.

    Attributes:
        last_error: the last connection error seen, if any (secrets redacted).
    """

    def __init__(self, timeout: float, last_error: str | None) -> None:
        self.timeout = timeout
        self.last_error = last_error
        detail = f"; last error: {last_error}" if last_error else ""
        super().__init__(f"not connected after {timeout:.1f} s{detail}")
