"""Settings of the scoring worker: environment ``FLEETCARE_SCORING_*``.

The database comes from :class:`backend.settings.BackendSettings`
(``FLEETCARE_DATABASE_URL``), the model registry from ``models.settings.ModelsSettings``
(``FLEETCARE_MODEL_DIR``) unless ``FLEETCARE_SCORING_REGISTRY_DIR`` is set.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from fleetcare.config import FleetcareSettings


class ScoringSettings(FleetcareSettings):
    """What the scoring worker reads from ``FLEETCARE_SCORING_*``.

    Keys of the shared TOML file that belong to other applications are ignored.
    """

    model_config = SettingsConfigDict(
        env_prefix="FLEETCARE_SCORING_",
        env_nested_delimiter="__",
        env_parse_none_str="none",
        extra="ignore",
        validate_default=True,
    )

    interval_s: float = Field(
        default=300.0, gt=0, le=86_400, description="seconds between two passes when continuous"
    )
    batch_size: int = Field(
        default=5000, ge=1, le=100_000, description="devices read and scored per batch"
    )
    lookback_days: int = Field(
        default=35,
        ge=1,
        le=400,
        description="a device whose newest reading is older than this is not scored",
    )
    day_grace_minutes: float = Field(
        default=15.0,
        ge=0,
        le=24 * 60,
        description="a day (UTC) is scored once it has been over this long, so that its "
        "rollup is complete (the maintenance pass runs every 5 minutes)",
    )
    top_contributions: int = Field(
        default=3, ge=0, le=20, description="contributing signals kept per prediction"
    )
    onnx_threads: int = Field(default=1, ge=1, le=64, description="onnxruntime intra-op threads")
    registry_dir: Path | None = Field(
        default=None, description="the model registry (default: FLEETCARE_MODEL_DIR's)"
    )
    metrics_host: str = Field(default="127.0.0.1", description="address of /metrics")
    metrics_port: int | None = Field(
        default=9474,
        ge=0,
        le=65535,
        description="port of /metrics (0 picks one, none disables)",
    )
    metrics_file: Path | None = Field(
        default=None,
        description="also write the metrics (Prometheus text) to this file after each pass",
    )
