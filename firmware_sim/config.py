"""Typed arguments of a simulation, validated once at the boundary (CLI or caller)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

SCHEMA_VERSION = 1


class SensorImpairments(BaseModel):
    """How imperfect the sensors are. Rates are per value unless stated."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    noise: bool = True
    missing_rate: float = Field(0.002, ge=0.0, le=0.5, description="share of values lost")
    dropout_per_device_year: float = Field(6.0, ge=0.0, description="all-channel dropouts")
    spike_rate: float = Field(2e-5, ge=0.0, le=0.01, description="share of values spiking")
    stuck_per_device_year: float = Field(0.5, ge=0.0, description="stuck-sensor episodes")
    drift_share: float = Field(0.08, ge=0.0, le=1.0, description="share of drifting sensors")


class ExportDefects(BaseModel):
    """Data-quality problems planted in the CRM / ERP / service-desk exports."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    duplicate_rate: float = Field(0.08, ge=0.0, le=1.0, description="CRM accounts entered twice")
    conflict_rate: float = Field(0.33, ge=0.0, le=1.0, description="records with a conflict")
    missing_rate: float = Field(0.03, ge=0.0, le=1.0, description="optional fields left empty")
    misregistered_device_rate: float = Field(
        0.3,
        ge=0.0,
        le=1.0,
        description="share of a duplicated account's devices registered against the duplicate",
    )


class SimConfig(BaseModel):
    """One simulation: the fleet, the span of time and every knob of realism.

    The same ``SimConfig`` (seed included) always produces the same output, byte for byte.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    seed: int = Field(42, ge=0)
    devices: int = Field(100, ge=1, le=1_000_000)
    accounts: int | None = Field(None, ge=1, description="default: about one per 8 devices")
    days: int = Field(30, ge=1, le=3660)
    start: date = date(2025, 1, 1)
    interval_s: int = Field(60, ge=1, le=3600, description="seconds between readings")
    wear_acceleration: float = Field(
        1.0, gt=0.0, le=1000.0, description="multiplies wear stress (tests, demos)"
    )
    random_failure_scale: float = Field(1.0, ge=0.0, le=1000.0)
    pump_share: float | None = Field(
        None, ge=0.0, le=1.0, description="force this share of pumps (default: by industry)"
    )
    sensors: SensorImpairments = SensorImpairments()
    exports: ExportDefects = ExportDefects()

    @model_validator(mode="after")
    def _check(self) -> Self:
        if 86_400 % self.interval_s:
            raise ValueError("interval_s must divide a day (86400 s)")
        if self.accounts is not None and self.accounts > self.devices:
            raise ValueError("cannot have more accounts than devices")
        return self

    @property
    def n_accounts(self) -> int:
        return self.accounts if self.accounts is not None else max(1, round(self.devices / 8))

    @property
    def steps_per_day(self) -> int:
        return 86_400 // self.interval_s

    @property
    def step_h(self) -> float:
        return self.interval_s / 3600.0

    @property
    def start_at(self) -> datetime:
        return datetime(self.start.year, self.start.month, self.start.day, tzinfo=UTC)

    @property
    def end_at(self) -> datetime:
        return self.start_at + timedelta(days=self.days)

    def step_time(self, step: int) -> datetime:
        return self.start_at + timedelta(seconds=step * self.interval_s)
