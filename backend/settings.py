"""Settings of the backend application (ingest, scoring, care engine, API)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator

from fleetcare.config import FleetcareSettings, default_data_dir

TOPIC_ROOT_PATTERN = r"^[A-Za-z0-9_\-]+(/[A-Za-z0-9_\-]+)*$"


class BackendSettings(FleetcareSettings):
    """Everything the backend reads from its environment (``FLEETCARE_*``) or TOML file."""

    database_url: str | None = Field(
        default=None,
        description="a PostgreSQL URL such as postgresql://user:pass@host:5432/fleetcare; "
        "unset starts an embedded PostgreSQL in the data directory",
    )
    broker_url: str | None = Field(
        default=None,
        description="an MQTT URL such as mqtt://host:1883 or mqtts://host:8883; "
        "unset starts an embedded broker",
    )
    data_dir: Path = Field(
        default_factory=default_data_dir,
        description="a writable directory for local state (embedded database, queues)",
    )
    topic_root: str = Field(
        default="fleetcare",
        pattern=TOPIC_ROOT_PATTERN,
        description="the first MQTT topic level(s), e.g. fleetcare or acme/prod",
    )
    storage_dialect: Literal["auto", "timescaledb", "postgres"] = Field(
        default="auto",
        description="auto (TimescaleDB when the extension is available), timescaledb or postgres",
    )
    telemetry_retention_days: int = Field(
        default=400, ge=1, description="days of raw telemetry to keep, a positive integer"
    )
    rollup_retention_days: int = Field(
        default=1825, ge=1, description="days of hourly/daily rollups to keep, a positive integer"
    )
    connect_timeout_s: float = Field(
        default=5.0, gt=0, le=120, description="seconds to wait for a service, 0 < t <= 120"
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        default="INFO", description="DEBUG, INFO, WARNING or ERROR"
    )
    api_host: str = Field(default="127.0.0.1", description="the address the API binds to")
    api_port: int = Field(default=8000, ge=1, le=65535, description="a TCP port, 1-65535")

    @field_validator("database_url")
    @classmethod
    def _postgres_scheme(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        if not value.startswith(("postgresql://", "postgres://")):
            raise ValueError("must start with postgresql://")
        return value

    @field_validator("broker_url")
    @classmethod
    def _mqtt_scheme(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        if not value.startswith(("mqtt://", "mqtts://", "tcp://", "ssl://")):
            raise ValueError("must start with mqtt:// or mqtts://")
        return value
