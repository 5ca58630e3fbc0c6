"""Settings of the care engine: environment ``FLEETCARE_CARE_*`` or the TOML ``[care]`` table.

The database comes from :class:`backend.settings.BackendSettings`; thresholds and the failure
mode catalogue live in the (versioned) rules, not here. Here: the regional capacity that sets
the lead time a ticket needs, the field teams, storm control, notification delivery and SMTP.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator
from pydantic_settings import (
    SettingsConfigDict,
)

from fleetcare.config import TableSettings

ENV_PREFIX = "FLEETCARE_CARE_"
TOML_TABLE = "care"


class RegionCapacity(BaseModel):
    """How long it takes, in a region, to get the parts and a technician to a device."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    parts_lead_hours: float = Field(default=48.0, ge=0, le=24 * 365)
    technician_lead_hours: float = Field(default=24.0, ge=0, le=24 * 365)

    @property
    def lead_hours(self) -> float:
        """Parts and technician are organised in parallel; the slower one sets the lead time."""
        return max(self.parts_lead_hours, self.technician_lead_hours)


class FieldTeam(BaseModel):
    """A field-service team: where it works and which skills it has."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    region: str = Field(min_length=1, max_length=64)
    skills: tuple[str, ...] = ()


class CareSettings(TableSettings):
    """What the care engine reads from ``FLEETCARE_CARE_*`` (or ``[care]`` in the TOML file)."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        env_parse_none_str="none",
        extra="forbid",
        validate_default=True,
    )
    toml_table: ClassVar[str] = TOML_TABLE

    rules_file: Path | None = Field(
        default=None,
        description="a YAML rules file loaded when the database holds no rules yet; unset "
        "uses the rules shipped with fleetcare (backend/care/default_rules.yaml)",
    )
    poll_interval_s: float = Field(
        default=5.0, gt=0, le=3600, description="seconds between engine passes, 0 < s <= 3600"
    )
    batch_size: int = Field(
        default=500, ge=1, le=100_000, description="predictions or health scores per pass"
    )
    cooldown_hours: float = Field(
        default=24.0,
        ge=0,
        description="after a ticket or alert is closed, the same need is not raised again "
        "for this many hours",
    )
    escalate_risk_delta: float = Field(
        default=0.1,
        gt=0,
        le=1,
        description="an open ticket is escalated when the failure risk rises by this much",
    )
    recede_margin: float = Field(
        default=0.1,
        ge=0,
        le=1,
        description="an open ticket with no work started is closed when the risk falls below "
        "the rule threshold minus this margin (and the RUL is back above the lead time)",
    )
    recede_predictions: int = Field(
        default=2,
        ge=1,
        le=20,
        description="such a ticket is closed only when this many consecutive predictions of "
        "the device have receded: one low prediction between high ones closes nothing",
    )
    default_capacity: RegionCapacity = Field(
        default_factory=RegionCapacity,
        description="parts and technician lead hours for regions not listed in regions",
    )
    regions: dict[str, RegionCapacity] = Field(
        default_factory=dict,
        description="per region: parts_lead_hours and technician_lead_hours",
    )
    teams: tuple[FieldTeam, ...] = Field(
        default=(), description="field teams: name, region and skills (failure-mode skills)"
    )
    reference_annual_value: float = Field(
        default=100_000.0,
        gt=0,
        description="an account with this annual contract value gets the full value weight",
    )
    storm_window_minutes: float = Field(
        default=60.0, gt=0, description="the window in which at-risk devices are counted"
    )
    storm_site_devices: int = Field(
        default=10,
        ge=2,
        description="this many devices of one site at risk within the window open an incident",
    )
    storm_account_devices: int = Field(
        default=25,
        ge=2,
        description="this many devices of one account at risk within the window open an incident",
    )
    max_tickets_per_site_per_hour: int = Field(
        default=20,
        ge=1,
        description="tickets opened per site and hour at most; more join an incident",
    )
    max_tickets_per_account_per_hour: int = Field(
        default=50,
        ge=1,
        description="tickets opened per account and hour at most; more join an incident",
    )
    incident_quiet_hours: float = Field(
        default=6.0, gt=0, description="an incident with no new member for this long is closed"
    )
    webhook_timeout_s: float = Field(
        default=10.0, gt=0, le=120, description="seconds to wait for a webhook receiver"
    )
    delivery_max_attempts: int = Field(
        default=12, ge=1, le=100, description="attempts before a notification is dead-lettered"
    )
    delivery_backoff_base_s: float = Field(
        default=30.0, gt=0, description="first retry delay; doubles each attempt (with jitter)"
    )
    delivery_backoff_max_s: float = Field(
        default=900.0, gt=0, description="longest delay between two attempts"
    )
    delivery_batch: int = Field(
        default=100, ge=1, le=10_000, description="notifications claimed per delivery pass"
    )
    email_alerts: bool = Field(
        default=False,
        description="also e-mail each new alert to the account's CSM (needs smtp_host)",
    )
    smtp_host: str | None = Field(default=None, description="SMTP server host; unset: no e-mail")
    smtp_port: int = Field(default=25, ge=1, le=65535, description="SMTP port")
    smtp_starttls: bool = Field(default=False, description="upgrade the SMTP session with STARTTLS")
    smtp_username: str | None = Field(default=None, description="SMTP user (optional)")
    smtp_password: SecretStr | None = Field(default=None, description="SMTP password (optional)")
    smtp_sender: str = Field(
        default="fleetcare@localhost", description="the From address of care e-mails"
    )
    failure_event_kinds: tuple[str, ...] = Field(
        default=("trip", "failure"),
        description="device event kinds that count as a real failure in the care report",
    )
    missed_failure_lookback_days: float = Field(
        default=30.0,
        gt=0,
        description="a failure with no ticket for its device in this many days before it is missed",
    )

    @model_validator(mode="after")
    def _consistent(self) -> CareSettings:
        if self.delivery_backoff_max_s < self.delivery_backoff_base_s:
            raise ValueError("delivery_backoff_max_s must be at least delivery_backoff_base_s")
        if self.email_alerts and not self.smtp_host:
            raise ValueError("email_alerts needs smtp_host")
        return self

    def capacity_for(self, region: str | None) -> RegionCapacity:
        """The capacity of ``region``, or the default one."""
        if region is not None and region in self.regions:
            return self.regions[region]
        return self.default_capacity
