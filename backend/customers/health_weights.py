"""Health-score weights: a versioned, validated set read from TOML or YAML."""

from __future__ import annotations

import tomllib
from importlib import resources
from pathlib import Path
from typing import Self

import yaml
from pydantic import BaseModel, Field, ValidationError, model_validator

from backend.customers.errors import WeightsError
from backend.customers.health_measures import MEASURE_NAMES

MEASURES = MEASURE_NAMES


class Bands(BaseModel):
    """Lower bounds of the bands (critical below ``at_risk``)."""

    healthy: float = Field(70, ge=0, le=100)
    watch: float = Field(50, ge=0, le=100)
    at_risk: float = Field(30, ge=0, le=100)

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if not self.healthy >= self.watch >= self.at_risk:
            raise ValueError("bands must satisfy healthy >= watch >= at_risk")
        return self

    def band(self, score: float) -> str:
        if score >= self.healthy:
            return "healthy"
        if score >= self.watch:
            return "watch"
        if score >= self.at_risk:
            return "at_risk"
        return "critical"


class HealthWeights(BaseModel):
    """``version`` is stored with every score so a past score can be explained."""

    version: str = Field(min_length=1, max_length=64)
    weights: dict[str, float]
    bands: Bands = Bands()

    @model_validator(mode="after")
    def _known_measures(self) -> Self:
        unknown = set(self.weights) - set(MEASURES)
        if unknown:
            raise ValueError(f"unknown measures {sorted(unknown)}; known: {', '.join(MEASURES)}")
        if any(w < 0 for w in self.weights.values()) or sum(self.weights.values()) <= 0:
            raise ValueError("weights must be non-negative and not all zero")
        return self


def load_weights(path: Path | None = None) -> HealthWeights:
    """The weights in ``path`` (``.toml``, ``.yaml``/``.yml``), or the built-in set.

    Raises:
        WeightsError: the file is missing, not TOML/YAML, or its content is invalid.
    """
    try:
        if path is None:
            text = resources.files("backend.customers").joinpath("health_weights.toml").read_text()
            data = tomllib.loads(text)
        elif path.suffix.casefold() == ".toml":
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        elif path.suffix.casefold() in (".yaml", ".yml"):
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        else:
            raise WeightsError(f"{path}: use a .toml or .yaml file")
        return HealthWeights.model_validate(data)
    except (OSError, tomllib.TOMLDecodeError, yaml.YAMLError) as exc:
        raise WeightsError(f"cannot read health weights {path}: {exc}") from None
    except ValidationError as exc:
        raise WeightsError(f"invalid health weights {path or 'built-in'}: {exc}") from None
