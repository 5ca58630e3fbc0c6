"""``DeviceConfig``: everything a device client needs, validated once when it is built."""

from __future__ import annotations

import ssl
from collections.abc import Mapping
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    ValidatorFunctionWrapHandler,
    field_validator,
    model_validator,
)

from device_sdk._errors import ConfigError, TopicError
from device_sdk.wire.codec import valid_name
from device_sdk.wire.payloads import MAX_BATCH_ENTRIES, MAX_PAYLOAD_BYTES
from device_sdk.wire.topics import DEFAULT_ROOT, validate_device_id, validate_root

_SCHEMES = {"mqtt": (False, 1883), "mqtts": (True, 8883)}


def _as_config_error(exc: ValidationError) -> ConfigError:
    problems = [
        (".".join(str(p) for p in err["loc"]) or "config", err["msg"].removeprefix("Value error, "))
        for err in exc.errors(include_url=False)
    ]
    return ConfigError(problems)


class Durability(StrEnum):
    """When ``record()``/``usage()``/``event()`` return, relative to the disk."""

    WRITE = "write"
    """After ``write(2)`` to the queue file: survives the process crashing or being killed.
    Power loss or an OS crash can lose what was written in the last ``fsync_interval_s``."""
    FSYNC = "fsync"
    """After ``fdatasync(2)``: survives power loss too. Concurrent callers share one
    ``fdatasync`` (group commit); a single caller pays one per call."""


class BrokerUrl(BaseModel):
    """A parsed ``mqtt://host:port`` or ``mqtts://host:port``."""

    model_config = ConfigDict(frozen=True)
    url: str
    host: str
    port: int
    tls: bool

    @classmethod
    def parse(cls, url: str) -> BrokerUrl:
        parts = urlsplit(url)
        if parts.scheme not in _SCHEMES:
            raise ValueError(f"{url!r}: scheme must be mqtt:// or mqtts://")
        if parts.username is not None or parts.password is not None:
            raise ValueError("broker URLs must not carry credentials: use username/password")
        if not parts.hostname:
            raise ValueError(f"{url!r}: no host")
        if parts.path not in ("", "/") or parts.query or parts.fragment:
            raise ValueError(f"{url!r}: only scheme, host and port are allowed")
        tls, default_port = _SCHEMES[parts.scheme]
        try:
            port = parts.port or default_port
        except ValueError as exc:
            raise ValueError(f"{url!r}: {exc}") from None
        return cls(url=f"{parts.scheme}://{parts.netloc}", host=parts.hostname, port=port, tls=tls)


class TlsConfig(BaseModel):
    """TLS for ``mqtts://`` brokers.

    Attributes:
        ca_file: PEM file of the CA(s) to trust. When set, **only** these are trusted (the
            CA is pinned); when ``None`` the system's trust store is used.
        cert_file / key_file: client certificate and key (PEM) for mutual TLS.
        key_password: password of ``key_file``, if encrypted. Never logged.
        check_hostname: verify that the broker's certificate names the host in the URL.
        min_version: lowest TLS version accepted.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    @model_validator(mode="wrap")
    @classmethod
    def _translate(cls, data: Any, handler: ValidatorFunctionWrapHandler) -> Any:
        try:
            tls = handler(data)
        except ValidationError as exc:
            raise _as_config_error(exc) from None
        tls._check_files()
        return tls

    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    key_password: SecretStr | None = None
    check_hostname: bool = True
    min_version: Literal["TLSv1.2", "TLSv1.3"] = "TLSv1.2"

    def _check_files(self) -> None:
        if (self.cert_file is None) != (self.key_file is None):
            raise ConfigError([("tls", "cert_file and key_file go together")])
        for name in ("ca_file", "cert_file", "key_file"):
            path = getattr(self, name)
            if path is not None and not Path(path).is_file():
                raise ConfigError([(f"tls.{name}", f"{path} is not a readable file")])

    def ssl_context(self) -> ssl.SSLContext:
        """Build the ``SSLContext`` (raises ``ConfigError`` if a file cannot be loaded)."""
        try:
            context = ssl.create_default_context(cafile=str(self.ca_file) if self.ca_file else None)
            context.minimum_version = (
                ssl.TLSVersion.TLSv1_3 if self.min_version == "TLSv1.3" else ssl.TLSVersion.TLSv1_2
            )
            context.check_hostname = self.check_hostname
            if self.cert_file is not None and self.key_file is not None:
                password = self.key_password.get_secret_value() if self.key_password else None
                context.load_cert_chain(str(self.cert_file), str(self.key_file), password)
        except (ssl.SSLError, OSError) as exc:
            raise ConfigError([("tls", f"cannot load certificates: {exc}")]) from None
        return context


class DeviceConfig(BaseModel):
    """Configuration of a :class:`~device_sdk.DeviceClient`. Immutable; validated once.

    Invalid values raise :class:`~device_sdk.ConfigError` listing every problem. Only
    ``device_id``, ``broker_urls`` and ``queue_path`` are required; the rest have defaults
    suited to a small Linux device. See ``docs/device-sdk.md`` for every field.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    # identity and connection
    device_id: str
    broker_urls: Annotated[tuple[str, ...], Field(min_length=1, max_length=16)]
    """Tried in order; on failure the next one is tried (failover)."""
    queue_path: Path
    """Directory of the durable queue (one per device; created if missing)."""
    topic_root: str = DEFAULT_ROOT
    username: str | None = None
    password: SecretStr | None = None
    client_id: str | None = None
    """MQTT client id; defaults to ``device_id``."""
    tls: TlsConfig | None = None
    """Used for ``mqtts://`` URLs (``None``: system trust store, hostname checked)."""
    protocol: Literal["auto", "5", "3.1.1"] = "auto"
    """``auto``: MQTT 5, falling back to 3.1.1 for a broker that refuses 5."""
    keepalive_s: Annotated[int, Field(ge=5, le=3600)] = 30
    connect_timeout_s: Annotated[float, Field(gt=0, le=120)] = 10.0
    session_expiry_s: Annotated[int, Field(ge=0, le=2**32 - 1)] = 86_400
    """How long the broker keeps this device's session (queued commands) while it is offline."""
    reconnect_min_s: Annotated[float, Field(gt=0, le=60)] = 0.5
    reconnect_max_s: Annotated[float, Field(gt=0, le=3600)] = 30.0

    # durable queue
    queue_max_bytes: Annotated[int, Field(ge=1024 * 1024)] = 64 * 1024 * 1024
    """Bound on the queue's size on disk; beyond it the oldest entries are dropped."""
    queue_segment_bytes: Annotated[int, Field(ge=64 * 1024)] | None = None
    """Drop granularity (default ``queue_max_bytes // 16``, 64 KiB..8 MiB)."""
    durability: Durability = Durability.WRITE
    fsync_interval_s: Annotated[float, Field(gt=0, le=60)] = 1.0
    """``durability="write"``: how often the background thread calls ``fdatasync``."""

    # batching and flow control
    batch_max_entries: Annotated[int, Field(ge=1, le=MAX_BATCH_ENTRIES)] = 500
    batch_max_bytes: Annotated[int, Field(ge=32 * 1024, le=192 * 1024)] = 128 * 1024
    batch_linger_s: Annotated[float, Field(ge=0, le=60)] = 0.05
    """How long a partial batch waits for more entries before it is sent."""
    max_in_flight: Annotated[int, Field(ge=1, le=1000)] = 20
    """Messages published and not yet acknowledged (paho reuses ids past 65,535)."""
    hold_unrouted: bool = True
    """MQTT 5: when the broker acknowledges a batch with reason 0x10 (no matching
    subscribers: nothing consumes the channel right now, e.g. ingest's shared subscription
    is not back yet after a broker restart), keep its entries and send them again after a
    backoff (``reconnect_min_s`` doubling up to ``reconnect_max_s``) instead of counting them
    as delivered. ``False``: the broker's acknowledgement is final, subscriber or not."""

    # input validation
    metric_catalogue: frozenset[str] | None = None
    """When set, ``record()`` refuses metric names outside it."""
    max_metrics_per_reading: Annotated[int, Field(ge=1, le=256)] = 256
    max_record_many: Annotated[int, Field(ge=1, le=100_000)] = 10_000

    # health and down-link
    state_interval_s: Annotated[float, Field(ge=0)] = 60.0
    """Period of the retained ``state`` message (0: only on connect and stop)."""
    command_queue_size: Annotated[int, Field(ge=1, le=10_000)] = 64
    """Commands waiting for a handler; beyond it the device replies ``busy``."""

    @model_validator(mode="wrap")
    @classmethod
    def _translate(cls, data: Any, handler: ValidatorFunctionWrapHandler) -> Any:
        try:
            config = handler(data)
        except ValidationError as exc:
            raise _as_config_error(exc) from None
        config._check_consistency()
        return config

    @field_validator("device_id")
    @classmethod
    def _device_id(cls, value: str) -> str:
        try:
            return validate_device_id(value)
        except TopicError as exc:
            raise ValueError(exc.reason) from None

    @field_validator("client_id")
    @classmethod
    def _client_id(cls, value: str | None) -> str | None:
        if value is not None and not 1 <= len(value.encode()) <= 65_535:
            raise ValueError("client_id must be 1 to 65,535 bytes")
        return value

    @field_validator("topic_root")
    @classmethod
    def _root(cls, value: str) -> str:
        try:
            return validate_root(value)
        except TopicError as exc:
            raise ValueError(exc.reason) from None

    @field_validator("broker_urls", mode="before")
    @classmethod
    def _urls_as_tuple(cls, value: Any) -> Any:
        return (value,) if isinstance(value, str) else tuple(value)

    @field_validator("broker_urls")
    @classmethod
    def _urls(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(BrokerUrl.parse(url).url for url in value)

    @field_validator("metric_catalogue")
    @classmethod
    def _catalogue(cls, value: frozenset[str] | None) -> frozenset[str] | None:
        if value is not None:
            bad = sorted(name for name in value if not valid_name(name))
            if bad:
                raise ValueError(f"invalid metric names {bad[:5]}")
            if not value:
                raise ValueError("an empty catalogue would refuse every metric")
        return value

    def _check_consistency(self) -> None:
        problems: list[tuple[str, str]] = []
        if self.reconnect_max_s < self.reconnect_min_s:
            problems.append(("reconnect_max_s", "must be >= reconnect_min_s"))
        overhead = self.batch_max_entries * 32 + 1024
        if self.batch_max_bytes + overhead > MAX_PAYLOAD_BYTES:
            problems.append(
                (
                    "batch_max_bytes",
                    f"plus {overhead} bytes of envelope must fit in {MAX_PAYLOAD_BYTES}",
                )
            )
        if self.queue_max_bytes < 4 * self.segment_bytes:
            problems.append(("queue_max_bytes", "must be at least 4 x queue_segment_bytes"))
        if problems:
            raise ConfigError(problems)

    @property
    def segment_bytes(self) -> int:
        """The queue's segment size, default applied."""
        return self.queue_segment_bytes or min(
            8 * 1024 * 1024, max(64 * 1024, self.queue_max_bytes // 16)
        )

    @property
    def brokers(self) -> tuple[BrokerUrl, ...]:
        return tuple(BrokerUrl.parse(url) for url in self.broker_urls)

    @property
    def mqtt_client_id(self) -> str:
        return self.client_id or self.device_id

    def redacted(self) -> Mapping[str, Any]:
        """The configuration as a dict with secrets masked (for logs and diagnostics)."""
        return self.model_dump(mode="json")  # SecretStr dumps as '**********'
