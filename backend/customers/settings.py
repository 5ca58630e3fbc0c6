"""Settings of the customers application (``FLEETCARE_CUSTOMERS_*``)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Self

from pydantic import Field, model_validator
from pydantic_settings import SettingsConfigDict

from fleetcare.config import FleetcareSettings

REPO_ROOT = Path(__file__).resolve().parents[2]


def default_data_sets_dir() -> Path:
    """``$FLEETCARE_DATA_SETS`` (shared with the models), else ``../shared/data`` beside the
    repository."""
    configured = os.environ.get("FLEETCARE_DATA_SETS")
    return Path(configured) if configured else REPO_ROOT.parent / "shared" / "data"


class CustomersSettings(FleetcareSettings):
    """Identity-resolution thresholds, the health weights file and the data-set directory.

    Other applications' keys in a shared TOML file are ignored, not refused.
    """

    model_config = SettingsConfigDict(env_prefix="FLEETCARE_CUSTOMERS_", extra="ignore")

    match_threshold: float = Field(
        default=0.85,
        gt=0,
        le=1,
        description="fuzzy matches at or above this confidence are merged automatically",
    )
    review_threshold: float = Field(
        default=0.6,
        gt=0,
        le=1,
        description="fuzzy matches between this and match_threshold go to the review queue",
    )
    health_weights: Path | None = Field(
        default=None,
        description="a TOML or YAML file of health-score weights (default: the built-in set)",
    )
    churn_model: Path | None = Field(
        default=None,
        description="a churn model file (fleetcare accounts churn-train); scores then carry "
        "a churn risk",
    )
    health_interval_s: float = Field(
        default=600.0,
        gt=0,
        le=86_400,
        description="seconds between two passes of the health service "
        "(fleetcare accounts health --continuous, part of fleetcare up)",
    )
    health_rescore_after_hours: float = Field(
        default=24.0,
        gt=0,
        le=24 * 31,
        description="the health service also rescores every account whose newest score is "
        "older than this (renewals draw nearer and usage ages without new data)",
    )
    data_sets: Path = Field(
        default_factory=default_data_sets_dir,
        description="a directory holding telco_churn/ (default: $FLEETCARE_DATA_SETS)",
    )

    @model_validator(mode="after")
    def _ordered_thresholds(self) -> Self:
        if self.review_threshold > self.match_threshold:
            raise ValueError("review_threshold must not exceed match_threshold")
        return self
