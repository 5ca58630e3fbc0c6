"""The gateway's configuration: a TOML or YAML file, validated once, every problem named.

The ``site`` part (local MQTT device list and Modbus register maps) can also be pushed from
the backend as the gateway's desired configuration (see :mod:`gateway.twin`); it is
validated with the same models before it is applied.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)

from device_sdk.wire.payloads import NAME_PATTERN
from device_sdk.wire.topics import DEVICE_ID_PATTERN, validate_root
from gateway.errors import GatewayConfigError, RegisterMapError
from gateway.registers import RegisterSpec, registers_overlap

__all__ = [
    "BandwidthRule",
    "GatewayConfig",
    "InferenceConfig",
    "LocalConfig",
    "ModbusDeviceConfig",
    "QueueConfig",
    "SiteConfig",
    "UplinkConfig",
    "load_config",
    "validate_model",
]

DeviceId = Annotated[str, StringConstraints(pattern=f"^{DEVICE_ID_PATTERN}$")]
MetricName = Annotated[str, StringConstraints(pattern=f"^{NAME_PATTERN}$")]
BrokerUrl = Annotated[str, StringConstraints(pattern=r"^mqtts?://[A-Za-z0-9_.\-\[\]:]+(:\d+)?/?$")]
_FROZEN = ConfigDict(extra="forbid", frozen=True)

M = TypeVar("M", bound=BaseModel)


class ModbusDeviceConfig(BaseModel):
    """One Modbus TCP device polled by the gateway and sent upstream as ``device_id``."""

    model_config = _FROZEN
    device_id: DeviceId
    host: Annotated[str, StringConstraints(min_length=1, max_length=253)]
    port: Annotated[int, Field(ge=1, le=65_535)] = 502
    unit_id: Annotated[int, Field(ge=0, le=255)] = 1
    poll_interval_s: Annotated[float, Field(gt=0, le=86_400)] = 1.0
    timeout_s: Annotated[float, Field(gt=0, le=60)] = 1.0
    registers: Annotated[list[RegisterSpec], Field(min_length=1, max_length=256)]

    @model_validator(mode="after")
    def _consistent_map(self) -> ModbusDeviceConfig:
        seen: dict[str, int] = {}
        for position, spec in enumerate(self.registers):
            if spec.metric in seen:
                raise ValueError(
                    f"registers[{position}].metric {spec.metric!r} is already used by "
                    f"registers[{seen[spec.metric]}]"
                )
            seen[spec.metric] = position
            if spec.end > 65_536:
                raise ValueError(
                    f"registers[{position}] ({spec.data_type.value} at {spec.address}) runs "
                    "past register 65535"
                )
            for earlier in range(position):
                other = self.registers[earlier]
                if registers_overlap(spec, other):
                    raise ValueError(
                        f"registers[{position}] ({spec.metric}, {spec.type.value} "
                        f"{spec.address}..{spec.end - 1}) overlaps registers[{earlier}] "
                        f"({other.metric}, {other.address}..{other.end - 1})"
                    )
        return self


class SiteConfig(BaseModel):
    """What the backend may change remotely: which devices the gateway serves."""

    model_config = _FROZEN
    mqtt_devices: list[DeviceId] | None = None
    """Local MQTT devices accepted (``None``: any device on the local broker)."""
    modbus: Annotated[list[ModbusDeviceConfig], Field(max_length=1_000)] = Field(
        default_factory=list
    )

    @model_validator(mode="after")
    def _unique_devices(self) -> SiteConfig:
        ids = [d.device_id for d in self.modbus]
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise ValueError(f"modbus device ids must be unique: {duplicates} repeat")
        clash = sorted(set(ids) & set(self.mqtt_devices or ()))
        if clash:
            raise ValueError(f"devices {clash} are both MQTT and Modbus devices")
        return self


class UplinkConfig(BaseModel):
    """The central broker the gateway forwards to, with the gateway's own credentials."""

    model_config = _FROZEN
    url: BrokerUrl
    username: str | None = None
    password: SecretStr | None = None
    client_id: DeviceId | None = None
    topic_root: str = "fleetcare"
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    keepalive_s: Annotated[int, Field(ge=5, le=3_600)] = 30
    connect_timeout_s: Annotated[float, Field(gt=0, le=120)] = 10.0
    """How long a connection attempt may take, from opening the TCP (and TLS) connection to
    the broker's CONNACK, before it is given up and retried with backoff."""
    reconnect_min_s: Annotated[float, Field(gt=0, le=60)] = 0.5
    reconnect_max_s: Annotated[float, Field(gt=0, le=600)] = 30.0
    max_in_flight: Annotated[int, Field(ge=1, le=1_000)] = 20
    batch_max_entries: Annotated[int, Field(ge=1, le=5_000)] = 500
    batch_max_bytes: Annotated[int, Field(ge=1_024, le=200 * 1024)] = 128 * 1024
    state_interval_s: Annotated[float, Field(ge=0, le=86_400)] = 30.0
    protocol: Literal["auto", "5", "3.1.1"] = "auto"
    """``auto``: MQTT 5, falling back to 3.1.1 for a broker that refuses 5 (e.g. amqtt), and
    alternating between the two while a broker never answered a CONNECT of either; ``5`` or
    ``3.1.1``: that protocol only. Only MQTT 5 tells the gateway that nobody subscribed (see
    ``hold_unrouted``)."""
    hold_unrouted: bool = True
    """MQTT 5: when the broker acknowledges a forwarded batch with reason 0x10 (no matching
    subscribers: nothing consumes the channel right now, e.g. ingest's shared subscription is
    not back yet after a broker restart), keep its entries in the queue, stop forwarding for a
    backoff delay (``reconnect_min_s`` doubling up to ``reconnect_max_s``) and send them
    again. ``False``: the broker's acknowledgement is final, subscriber or not."""

    @field_validator("topic_root")
    @classmethod
    def _root(cls, value: str) -> str:
        validate_root(value)
        return value

    @model_validator(mode="after")
    def _backoff(self) -> UplinkConfig:
        if self.reconnect_max_s < self.reconnect_min_s:
            raise ValueError("reconnect_max_s must be >= reconnect_min_s")
        return self


class LocalConfig(BaseModel):
    """The local broker the site's devices publish to (same wire contract)."""

    model_config = _FROZEN
    url: BrokerUrl
    username: str | None = None
    password: SecretStr | None = None
    topic_root: str = "fleetcare"
    client_id: DeviceId | None = None
    """Persistent-session client id (default ``{gateway_id}-intake``)."""
    alert_topic: Annotated[str, StringConstraints(pattern=r"^[^#+\x00]{1,256}$")] | None = None
    """Where local alerts are published (default ``{topic_root}/gateway/{gateway_id}/alerts``)."""

    @field_validator("topic_root")
    @classmethod
    def _root(cls, value: str) -> str:
        validate_root(value)
        return value


class QueueConfig(BaseModel):
    model_config = _FROZEN
    max_bytes: Annotated[int, Field(ge=1024 * 1024)] = 256 * 1024 * 1024
    segment_bytes: Annotated[int, Field(ge=16 * 1024)] | None = None
    durability: Literal["write", "fsync"] = "write"
    """``write``: acknowledged to a device after ``write(2)`` (survives a crash of the
    gateway); ``fsync``: after ``fdatasync`` too (survives power loss)."""
    fsync_interval_s: Annotated[float, Field(gt=0, le=60)] = 1.0
    priority_max_bytes: Annotated[int, Field(ge=1024 * 1024)] = 8 * 1024 * 1024

    @model_validator(mode="after")
    def _segments(self) -> QueueConfig:
        if self.segment_bytes is not None and self.max_bytes < 4 * self.segment_bytes:
            raise ValueError("max_bytes must be at least 4 x segment_bytes")
        return self


class InferenceConfig(BaseModel):
    model_config = _FROZEN
    model_dir: Path
    """A model version's directory: ``manifest.json`` and its ONNX artifact."""
    threshold: Annotated[float, Field(gt=0, le=1)] = 0.8
    hysteresis: Annotated[float, Field(ge=0, lt=1)] = 0.05
    score_every: Annotated[int, Field(ge=1, le=100_000)] = 1
    age_metric: MetricName | None = None
    """Metric holding a reading's age, for models whose window has an age channel."""
    devices: list[DeviceId] | None = None
    """Devices scored (``None``: every device with the model's features)."""
    queue_size: Annotated[int, Field(ge=1, le=1_000_000)] = 10_000


class BandwidthRule(BaseModel):
    """Per-metric reduction before a reading is queued; see ``docs/gateway.md``."""

    model_config = _FROZEN
    deadband: Annotated[float, Field(ge=0, allow_inf_nan=False)] | None = None
    """Send a value only when it differs from the last one sent by more than this."""
    interval_s: Annotated[float, Field(gt=0, le=86_400)] | None = None
    """Downsampling / heartbeat: send at least (without deadband: at most) every this long."""

    @model_validator(mode="after")
    def _something(self) -> BandwidthRule:
        if self.deadband is None and self.interval_s is None:
            raise ValueError("set deadband, interval_s or both")
        return self


class GatewayConfig(BaseModel):
    model_config = _FROZEN
    gateway_id: DeviceId
    data_dir: Path
    uplink: UplinkConfig
    local: LocalConfig | None = None
    queue: QueueConfig = Field(default_factory=QueueConfig)
    inference: InferenceConfig | None = None
    bandwidth: dict[MetricName, BandwidthRule] = Field(default_factory=dict)
    site: SiteConfig = Field(default_factory=SiteConfig)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    @model_validator(mode="after")
    def _ids(self) -> GatewayConfig:
        if any(d.device_id == self.gateway_id for d in self.site.modbus):
            raise ValueError("gateway_id must differ from every Modbus device id")
        return self

    @property
    def uplink_client_id(self) -> str:
        return self.uplink.client_id or self.gateway_id

    @property
    def intake_client_id(self) -> str:
        assert self.local is not None
        return self.local.client_id or f"{self.gateway_id}-intake"[:64]

    @property
    def alert_topic(self) -> str:
        assert self.local is not None
        return self.local.alert_topic or f"{self.local.topic_root}/gateway/{self.gateway_id}/alerts"


def _key(location: tuple[int | str, ...], prefix: str) -> str:
    key = prefix
    for part in location:
        if isinstance(part, int):
            key += f"[{part}]"
        elif part not in ("function-after", "function-before"):
            key = f"{key}.{part}" if key else str(part)
    return key or "(top level)"


def validate_model(model: type[M], data: Any, source: str, prefix: str = "") -> M:
    """Validate ``data`` into ``model``; every problem is raised in one
    :class:`GatewayConfigError`, each named by its dotted key.
    """
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = [
            (_key(e["loc"], prefix), e["msg"].removeprefix("Value error, ")) for e in exc.errors()
        ]
        register_problem = any(".registers" in key or "registers[" in msg for key, msg in problems)
        error_type = RegisterMapError if register_problem else GatewayConfigError
        raise error_type(source, problems) from None


def load_config(path: Path) -> GatewayConfig:
    """Read a TOML (``.toml``) or YAML (``.yaml``/``.yml``) gateway configuration.

    Raises:
        GatewayConfigError: unreadable, not TOML/YAML, or invalid; ``problems`` name the keys.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise GatewayConfigError(str(path), [("(file)", str(exc))]) from None
    try:
        if path.suffix.lower() in (".yaml", ".yml"):
            data = yaml.safe_load(text)
        else:
            data = tomllib.loads(text)
    except (tomllib.TOMLDecodeError, yaml.YAMLError) as exc:
        raise GatewayConfigError(str(path), [("(syntax)", str(exc))]) from None
    if not isinstance(data, dict):
        raise GatewayConfigError(str(path), [("(top level)", "must be a table/mapping")])
    return validate_model(GatewayConfig, data, str(path))
