"""Settings of the downlink service: environment ``FLEETCARE_DOWNLINK_*``.

The database, the broker and the topic root come from :class:`backend.settings.BackendSettings`.
"""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from fleetcare.config import FleetcareSettings

MAX_COMMAND_TTL_S = 7 * 86_400


class DownlinkSettings(FleetcareSettings):
    """What ``fleetcare downlink run`` (the ``downlink`` service) and the API read.

    Keys of the shared TOML file that belong to other applications are ignored.
    """

    model_config = SettingsConfigDict(
        env_prefix="FLEETCARE_DOWNLINK_",
        env_nested_delimiter="__",
        env_parse_none_str="none",
        extra="ignore",
        validate_default=True,
    )

    poll_interval_s: float = Field(
        default=5.0,
        gt=0,
        le=3600,
        description="seconds between two looks at the database when no notification came "
        "(the API notifies the service of every change, so this only bounds the delay "
        "after a missed notification)",
    )
    command_ttl_s: int = Field(
        default=3600,
        ge=1,
        le=MAX_COMMAND_TTL_S,
        description="how long a command waits for its device when the request sets no "
        "ttl_s: unanswered after this, it is marked expired (1 s to 7 days)",
    )
    retry_interval_s: float = Field(
        default=30.0,
        gt=0,
        le=86_400,
        description="seconds before a command is sent again when its device was busy or, "
        "on MQTT 5, had no session on the broker to queue it in",
    )
    publish_timeout_s: float = Field(
        default=10.0,
        gt=0,
        le=300,
        description="seconds to wait for the broker to acknowledge a publish",
    )
    batch_size: int = Field(
        default=500,
        ge=1,
        le=10_000,
        description="desired configs or commands published per database round (their "
        "acknowledgements awaited together), 1-10000",
    )
    client_id: str = Field(
        default="fleetcare-downlink",
        pattern=r"^[A-Za-z0-9_.-]{1,64}$",
        description="MQTT client id of the service; its persistent session keeps the "
        "devices' answers while it is down, so keep it stable",
    )
