"""Settings of the models application: where the data sets and the model registry live."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from fleetcare.config import FleetcareSettings, default_data_dir

REPO_ROOT = Path(__file__).resolve().parents[1]


def default_data_sets_dir() -> Path:
    """``../shared/data`` relative to the repository root."""
    return REPO_ROOT.parent / "shared" / "data"


class ModelsSettings(FleetcareSettings):
    """``FLEETCARE_DATA_SETS``, ``FLEETCARE_MODEL_DIR`` and ``FLEETCARE_DATA_DIR``.

    Other applications' keys in a shared TOML file are ignored, not refused.
    """

    model_config = SettingsConfigDict(extra="ignore")

    data_dir: Path = Field(
        default_factory=default_data_dir,
        description="a directory for local state; the registry defaults to <data_dir>/models",
    )
    data_sets: Path = Field(
        default_factory=default_data_sets_dir,
        description="a directory holding cmapss/ and ai4i2020/",
    )
    model_dir: Path | None = Field(
        default=None, description="the model registry directory (default <data_dir>/models)"
    )

    @property
    def registry_dir(self) -> Path:
        return self.model_dir if self.model_dir is not None else self.data_dir / "models"
