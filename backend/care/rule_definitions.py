"""What a care rule says: pydantic models for ticket and alert rules, and their YAML form.

A rules file is ``{"rules": [{"name": ..., "definition": {"kind": ..., ...}}, ...]}``. The
``kind`` of a definition says what it evaluates and whether it raises a ticket or an alert.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, model_validator

from backend.care.errors import RuleError

DEFAULT_RULES_FILE = Path(__file__).with_name("default_rules.yaml")
RULE_NAME_PATTERN = r"^[a-z0-9][a-z0-9_.-]{0,63}$"
DEFAULT_MODE = "default"
Band = Literal["healthy", "watch", "at_risk", "critical"]
BAND_ORDER: dict[str, int] = {"healthy": 0, "watch": 1, "at_risk": 2, "critical": 3}
Severity = Literal["info", "warning", "critical"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class RepairAction(_Strict):
    """What a technician should do for one failure mode, and what to bring."""

    action: str = Field(min_length=1, max_length=500)
    parts: tuple[str, ...] = ()
    skill: str = Field(default="general", pattern=r"^[a-z0-9_.-]{1,64}$")


class PriorityWeights(_Strict):
    """Weights of the priority score; each factor is in [0, 1]."""

    risk: float = Field(default=0.4, ge=0, le=100)
    value: float = Field(default=0.2, ge=0, le=100)
    sla: float = Field(default=0.2, ge=0, le=100)
    health: float = Field(default=0.2, ge=0, le=100)

    @model_validator(mode="after")
    def _not_all_zero(self) -> PriorityWeights:
        if self.risk + self.value + self.sla + self.health <= 0:
            raise ValueError("at least one priority weight must be positive")
        return self


class FailureRiskRule(_Strict):
    """A ticket when the failure risk within the horizon reaches ``risk_threshold`` or the RUL
    falls under the lead time needed (regional parts and technician lead time plus margin)."""

    kind: Literal["failure_risk"] = "failure_risk"
    risk_threshold: float = Field(gt=0, le=1)
    max_horizon_hours: int = Field(default=24 * 30, gt=0, le=24 * 3650)
    rul_margin_hours: float = Field(default=0.0, ge=0, le=24 * 3650)
    notify_csm_max_priority: int = Field(
        default=2, ge=0, le=5, description="tickets of this priority or more urgent also alert"
    )
    weights: PriorityWeights = PriorityWeights()
    catalogue: dict[str, RepairAction]

    @model_validator(mode="after")
    def _has_default(self) -> FailureRiskRule:
        if DEFAULT_MODE not in self.catalogue:
            raise ValueError(f"catalogue needs a {DEFAULT_MODE!r} entry for unlisted modes")
        return self

    def repair_for(self, failure_mode: str) -> RepairAction:
        return self.catalogue.get(failure_mode, self.catalogue[DEFAULT_MODE])


class HealthDropRule(_Strict):
    """An alert when an account's health score fell by ``drop_points`` within the window."""

    kind: Literal["health_drop"] = "health_drop"
    drop_points: float = Field(gt=0, le=100)
    window_days: float = Field(default=30.0, gt=0, le=3650)
    severity: Severity = "warning"


class HealthBandRule(_Strict):
    """An alert when an account's band crosses into one of ``into`` from a better band."""

    kind: Literal["health_band"] = "health_band"
    into: tuple[Band, ...] = ("at_risk", "critical")
    severity: Severity = "warning"


class ChurnRiskRule(_Strict):
    """An alert when churn risk rose by ``rise`` within the window and is at least ``min_risk``."""

    kind: Literal["churn_risk"] = "churn_risk"
    rise: float = Field(gt=0, le=1)
    min_risk: float = Field(default=0.0, ge=0, le=1)
    window_days: float = Field(default=30.0, gt=0, le=3650)
    severity: Severity = "warning"


class FleetRiskRule(_Strict):
    """An alert when ``min_devices`` devices of one account are at risk at once."""

    kind: Literal["fleet_risk"] = "fleet_risk"
    min_devices: int = Field(ge=1)
    severity: Severity = "critical"


class RenewalRiskRule(_Strict):
    """An alert when a renewal is within ``within_days`` and health is poor."""

    kind: Literal["renewal_risk"] = "renewal_risk"
    within_days: int = Field(gt=0, le=3650)
    max_score: float = Field(default=60.0, ge=0, le=100)
    severity: Severity = "critical"


TicketDefinition = FailureRiskRule
AlertDefinition = HealthDropRule | HealthBandRule | ChurnRiskRule | FleetRiskRule | RenewalRiskRule
RuleDefinition = Annotated[
    FailureRiskRule
    | HealthDropRule
    | HealthBandRule
    | ChurnRiskRule
    | FleetRiskRule
    | RenewalRiskRule,
    Field(discriminator="kind"),
]
_DEFINITION: TypeAdapter[RuleDefinition] = TypeAdapter(RuleDefinition)


def target_of(definition: FailureRiskRule | AlertDefinition) -> Literal["ticket", "alert"]:
    """Whether the rule raises tickets or alerts."""
    return "ticket" if isinstance(definition, FailureRiskRule) else "alert"


class RuleSpec(_Strict):
    """A named rule as written in a rules file or sent to the API."""

    name: str = Field(pattern=RULE_NAME_PATTERN)
    definition: RuleDefinition
    enabled: bool = True

    @property
    def target(self) -> Literal["ticket", "alert"]:
        return target_of(self.definition)


class RulesFile(_Strict):
    rules: tuple[RuleSpec, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_names(self) -> RulesFile:
        names = [rule.name for rule in self.rules]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"rule names must be unique, repeated: {', '.join(duplicates)}")
        return self


def describe_errors(exc: ValidationError) -> list[str]:
    """One line per problem: where it is and what is wrong."""
    problems = []
    for error in exc.errors():
        where = ".".join(str(part) for part in error["loc"]) or "(top level)"
        problems.append(f"{where}: {error['msg']}")
    return problems


def parse_definition(data: Any, source: str = "definition") -> FailureRiskRule | AlertDefinition:
    """Validate one rule definition (as stored in ``care_rules.definition``).

    Raises:
        RuleError: listing every bad field.
    """
    try:
        return _DEFINITION.validate_python(data)
    except ValidationError as exc:
        raise RuleError(source, describe_errors(exc)) from None


def parse_rules(text: str, source: str) -> tuple[RuleSpec, ...]:
    """Validate the YAML text of a rules file.

    Raises:
        RuleError: the YAML does not parse or a rule does not validate.
    """
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise RuleError(source, [f"not valid YAML: {exc}"]) from None
    try:
        return RulesFile.model_validate(data).rules
    except ValidationError as exc:
        raise RuleError(source, describe_errors(exc)) from None


def load_rules_file(path: Path | None = None) -> tuple[RuleSpec, ...]:
    """The rules of ``path``, or the rules shipped with fleetcare when ``path`` is ``None``."""
    target = path or DEFAULT_RULES_FILE
    try:
        text = target.read_text(encoding="utf-8")
    except OSError as exc:
        raise RuleError(str(target), [f"cannot read: {exc.strerror or exc}"]) from None
    return parse_rules(text, str(target))
