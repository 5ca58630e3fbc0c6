"""Settings of the ingest: environment ``FLEETCARE_INGEST_*`` or the TOML ``[ingest]`` table.

Where the database and the broker are, and the topic root, come from
:class:`backend.settings.BackendSettings` (``FLEETCARE_DATABASE_URL``, ``FLEETCARE_BROKER_URL``,
``FLEETCARE_TOPIC_ROOT``); everything specific to the ingest is here.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, model_validator
from pydantic_settings import (
    SettingsConfigDict,
)

from device_sdk.wire import MAX_PAYLOAD_BYTES
from fleetcare.config import TableSettings

ENV_PREFIX = "FLEETCARE_INGEST_"
TOML_TABLE = "ingest"
DAY_S = 86_400


class IngestSettings(TableSettings):
    """What the ingest reads from ``FLEETCARE_INGEST_*`` (or ``[ingest]`` in the TOML file)."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        env_parse_none_str="none",
        extra="forbid",
        validate_default=True,
    )
    toml_table: ClassVar[str] = TOML_TABLE

    client_id_prefix: str = Field(
        default="fleetcare-ingest",
        pattern=r"^[A-Za-z0-9_.-]{1,48}$",
        description="MQTT client id prefix; worker i connects as {prefix}-{i}. It must be "
        "stable across restarts (the persistent session is keyed on it) and different on "
        "every host that runs ingest",
    )
    subscription: Literal["auto", "shared", "plain", "partitioned"] = Field(
        default="auto",
        description="plain (one worker), partitioned (every worker subscribes to everything "
        "and writes the devices of its partition: crc32(device) % workers), shared "
        "($share/{group}/...: the broker splits the load; mosquitto 2.0.11 forgets shared "
        "subscriptions across a restart, and what devices publish before the workers "
        "subscribe again is lost unless they hold it: the fleetcare SDK and gateway on MQTT "
        "5 do, MQTT 3.1.1 publishers do not), or auto: partitioned with several workers, "
        "plain with one",
    )
    share_group: str = Field(
        default="fleetcare-ingest",
        pattern=r"^[A-Za-z0-9_.-]{1,64}$",
        description="the MQTT 5 shared subscription group ($share/{group}/...)",
    )
    session_expiry_s: int = Field(
        default=7 * DAY_S,
        ge=60,
        le=2**32 - 2,
        description="seconds the broker keeps a worker's session (and its queued messages) "
        "while the worker is away; messages of an expired session are lost",
    )
    keepalive_s: int = Field(
        default=60, ge=5, le=3600, description="MQTT keepalive in seconds, 5-3600"
    )
    max_pending_messages: int = Field(
        default=20_000,
        ge=10,
        le=60_000,
        description="most messages received but not yet acknowledged (the bounded queue); "
        "when reached, the receive loop waits and the broker holds the rest",
    )
    max_pending_bytes: int = Field(
        default=64 * 1024 * 1024,
        ge=1024 * 1024,
        description="most payload bytes received but not yet acknowledged",
    )
    batch_max_bytes: int = Field(
        default=4 * 1024 * 1024,
        ge=1024,
        le=256 * 1024 * 1024,
        description="payload bytes per batch at most (about 25,000 readings of 8 metrics "
        "with the defaults); a batch is one transaction and one COPY",
    )
    batch_max_messages: int = Field(
        default=1_000, ge=1, le=60_000, description="messages per batch at most"
    )
    commit_concurrency: int = Field(
        default=2,
        ge=1,
        le=8,
        description="batches committed at once, each on its own connection (acknowledgements "
        "stay in order); 2 keeps the database busy while the next batch is prepared",
    )
    batch_max_wait_ms: int = Field(
        default=50,
        ge=0,
        le=10_000,
        description="longest wait for more messages before writing a batch that is not full",
    )
    telemetry_write: Literal["auto", "copy", "insert"] = Field(
        default="auto",
        description="how telemetry rows are written: copy (binary COPY, the fast path), "
        "insert (multi-row INSERT ... ON CONFLICT DO NOTHING, for servers without COPY FROM "
        "STDIN), or auto: insert on a WebAssembly build of PostgreSQL (PGlite), else copy",
    )
    max_payload_bytes: int = Field(
        default=MAX_PAYLOAD_BYTES,
        ge=1024,
        le=MAX_PAYLOAD_BYTES,
        description="payloads larger than this are dead-lettered (reason too_large)",
    )
    max_future_s: float = Field(
        default=300.0,
        ge=0,
        description="readings time-stamped further ahead of the server clock are dead-lettered",
    )
    max_past_s: float = Field(
        default=30.0 * DAY_S,
        gt=0,
        le=3650.0 * DAY_S,
        description="readings older than this are dead-lettered (keep below the retention)",
    )
    offline_after_s: float = Field(
        default=600.0,
        ge=10,
        description="a device that sent nothing for this long is marked offline",
    )
    offline_check_interval_s: float = Field(
        default=15.0, ge=1, description="how often the offline detector runs"
    )
    liveness_interval_s: float = Field(
        default=5.0,
        ge=0,
        description="least seconds between two last-seen updates of one device by one worker",
    )
    device_cache_ttl_s: float = Field(
        default=30.0,
        ge=0,
        description="how long a device lookup (id, status) is trusted before it is re-read",
    )
    device_cache_size: int = Field(
        default=200_000, ge=100, description="devices kept in a worker's cache at most"
    )
    unknown_retry_s: float = Field(
        default=5.0,
        ge=0,
        description="how long an unknown device or metric is remembered as unknown",
    )
    dead_letter_payload_bytes: int = Field(
        default=MAX_PAYLOAD_BYTES,
        ge=1024,
        description="dead letters keep at most this many payload bytes (the rest is cut)",
    )
    db_retry_max_s: float = Field(
        default=5.0, gt=0, le=60, description="longest pause between database retries"
    )
    metrics_host: str = Field(
        default="127.0.0.1", description="address the Prometheus /metrics endpoint binds to"
    )
    metrics_port: int | None = Field(
        default=9464,
        ge=0,
        le=65535,
        description="port of /metrics for worker 0 (worker i uses port+i); 0 picks a free "
        "port, none disables the endpoint",
    )

    @model_validator(mode="after")
    def _bounds_agree(self) -> IngestSettings:
        if self.batch_max_messages > self.max_pending_messages:
            raise ValueError("batch_max_messages must not exceed max_pending_messages")
        if self.liveness_interval_s * 2 > self.offline_after_s:
            raise ValueError("liveness_interval_s must be at most half of offline_after_s")
        return self

    def subscription_for(self, workers: int) -> Literal["shared", "plain", "partitioned"]:
        """The subscription mode ``workers`` workers use (``auto`` resolved)."""
        if self.subscription == "auto":
            return "partitioned" if workers > 1 else "plain"
        return self.subscription
