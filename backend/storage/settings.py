"""Settings of the storage maintenance service: environment ``FLEETCARE_MAINTENANCE_*``.

The database comes from :class:`backend.settings.BackendSettings` (``FLEETCARE_DATABASE_URL``).
"""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from fleetcare.config import FleetcareSettings


class MaintenanceSettings(FleetcareSettings):
    """What ``fleetcare db maintain --continuous`` (the ``maintain`` service) reads.

    Keys of the shared TOML file that belong to other applications are ignored.
    """

    model_config = SettingsConfigDict(
        env_prefix="FLEETCARE_MAINTENANCE_",
        env_nested_delimiter="__",
        env_parse_none_str="none",
        extra="ignore",
        validate_default=True,
    )

    interval_s: float = Field(
        default=300.0,
        gt=0,
        le=86_400,
        description="seconds between two maintenance passes (partitions, rollups, retention); "
        "on plain PostgreSQL the rollups lag the raw readings by up to this much",
    )
    refresh_lookback_days: float | None = Field(
        default=None,
        gt=0,
        le=3650,
        description="how far back a pass refreshes the rollups (default: as far back as "
        "ingest accepts readings, FLEETCARE_INGEST_MAX_PAST_S, plus a day)",
    )
