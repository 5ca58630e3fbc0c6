"""Rules: YAML validation with clear errors, versions, the active set."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg
import pytest

from backend.care.errors import RuleError
from backend.care.rule_definitions import (
    FailureRiskRule,
    HealthDropRule,
    RuleSpec,
    load_rules_file,
    parse_rules,
)
from backend.care.rule_store import (
    active_rules,
    create_rule_version,
    ensure_rules,
    list_rules,
    set_rule_enabled,
    sync_rules,
)


def test_shipped_rules_validate_and_cover_every_rule_kind() -> None:
    rules = load_rules_file()
    kinds = {rule.definition.kind for rule in rules}
    assert kinds == {
        "failure_risk",
        "health_drop",
        "health_band",
        "churn_risk",
        "fleet_risk",
        "renewal_risk",
    }
    ticket = next(r.definition for r in rules if isinstance(r.definition, FailureRiskRule))
    assert ticket.repair_for("seal_leak").parts == ("mechanical-seal-kit",)
    assert ticket.repair_for("never-heard-of").skill == "general"


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("rules: [", "not valid YAML"),
        ("rules: []", "rules: Tuple should have at least 1 item"),
        (
            "rules:\n  - name: x\n    definition: {kind: health_drop, drop_points: -3}",
            "rules.0.definition.health_drop.drop_points: Input should be greater than 0",
        ),
        (
            "rules:\n  - name: x\n    definition: {kind: failure_risk, risk_threshold: 0.5,"
            " catalogue: {a: {action: do}}}",
            "catalogue needs a 'default' entry",
        ),
        (
            "rules:\n  - name: x\n    definition: {kind: teleport}",
            "does not match any of the expected tags",
        ),
        (
            "rules:\n  - name: Bad Name\n    definition: {kind: fleet_risk, min_devices: 2}",
            "rules.0.name: String should match pattern",
        ),
        (
            "rules:\n  - name: x\n    definition: {kind: fleet_risk, min_devices: 2, typo: 1}",
            "typo: Extra inputs are not permitted",
        ),
        (
            "rules:\n  - {name: x, definition: {kind: fleet_risk, min_devices: 2}}\n"
            "  - {name: x, definition: {kind: fleet_risk, min_devices: 3}}",
            "rule names must be unique, repeated: x",
        ),
    ],
)
def test_bad_rules_are_refused_with_the_place_and_the_reason(text: str, problem: str) -> None:
    with pytest.raises(RuleError) as caught:
        parse_rules(text, "rules.yaml")
    assert "invalid care rules in rules.yaml" in str(caught.value)
    assert problem in str(caught.value)


def test_missing_rules_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(RuleError, match="cannot read"):
        load_rules_file(tmp_path / "absent.yaml")


@pytest.mark.services
def test_rules_are_versioned_and_the_newest_enabled_version_is_active(
    conn: psycopg.Connection[Any],
) -> None:
    shipped = load_rules_file()
    assert len(ensure_rules(conn, shipped, actor="boot")) == 6
    assert ensure_rules(conn, shipped, actor="boot") == []  # only on an empty table
    assert sync_rules(conn, shipped, actor="boot") == []  # unchanged: no new version
    drop = RuleSpec(name="health-drop", definition=HealthDropRule(drop_points=25, window_days=14))
    v2 = create_rule_version(conn, drop, actor="ops")
    assert v2.version == 2
    active = {r.name: r for r in active_rules(conn).alert_rules}
    assert active["health-drop"].id == v2.id
    set_rule_enabled(conn, v2.id, False, actor="ops")
    active = {r.name: r for r in active_rules(conn).alert_rules}
    assert active["health-drop"].version == 1  # falls back to the previous enabled version
    assert [r.version for r in list_rules(conn, name="health-drop", all_versions=True)] == [1, 2]
    conn.commit()
    with pytest.raises(RuleError, match="health-drop raises alerts, not tickets"):
        create_rule_version(
            conn,
            RuleSpec(
                name="health-drop",
                definition=FailureRiskRule(
                    risk_threshold=0.5, catalogue={"default": {"action": "look"}}
                ),
            ),
            actor="ops",
        )
    conn.rollback()
    audit = conn.execute(
        "SELECT count(*) FROM audit_log WHERE subject_kind = 'care_rule'"
    ).fetchone()
    assert audit is not None and audit[0] >= 8
