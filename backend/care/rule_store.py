"""Versioned rules in ``care_rules``: create a version, enable or disable it, read the active set.

A rule is never edited in place: a change is a new version (``version + 1``), so every ticket
and alert keeps pointing at the exact rule that raised it. The active rule of a name is its
newest enabled version.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import psycopg
from psycopg.rows import dict_row

from backend.care.audit import write_audit
from backend.care.errors import NotFoundError, RuleError
from backend.care.rule_definitions import (
    AlertDefinition,
    FailureRiskRule,
    RuleSpec,
    parse_definition,
    target_of,
)

_LOCK_KEY = "care_rules"


@dataclass(frozen=True)
class StoredRule:
    """One version of a rule as stored."""

    id: int
    name: str
    version: int
    target: Literal["ticket", "alert"]
    definition: FailureRiskRule | AlertDefinition
    enabled: bool
    created_by: str
    created_at: datetime

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "version": self.version,
            "target": self.target,
            "definition": self.definition.model_dump(mode="json"),
            "enabled": self.enabled,
            "created_by": self.created_by,
            "created_at": self.created_at,
        }


@dataclass(frozen=True)
class RuleSet:
    """The active version of each rule, split by what it raises."""

    ticket_rules: tuple[StoredRule, ...]
    alert_rules: tuple[StoredRule, ...]

    def alert_rules_of(self, kind: str) -> tuple[StoredRule, ...]:
        return tuple(rule for rule in self.alert_rules if rule.definition.kind == kind)


def _row_to_rule(row: dict[str, Any]) -> StoredRule:
    definition = parse_definition(row["definition"], f"care_rules id {row['id']}")
    return StoredRule(
        id=row["id"],
        name=row["name"],
        version=row["version"],
        target=row["target"],
        definition=definition,
        enabled=row["enabled"],
        created_by=row["created_by"],
        created_at=row["created_at"],
    )


def list_rules(
    conn: psycopg.Connection[Any], *, name: str | None = None, all_versions: bool = False
) -> list[StoredRule]:
    """Rules ordered by name and version; only the newest version of each unless asked."""
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            "SELECT * FROM care_rules WHERE (%(name)s::text IS NULL OR name = %(name)s)"
            " ORDER BY name, version",
            {"name": name},
        )
        rows = [_row_to_rule(row) for row in cur.fetchall()]
    if all_versions:
        return rows
    newest: dict[str, StoredRule] = {}
    for rule in rows:
        newest[rule.name] = rule
    return list(newest.values())


def get_rule(conn: psycopg.Connection[Any], rule_id: int) -> StoredRule:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute("SELECT * FROM care_rules WHERE id = %s", (rule_id,))
        row = cur.fetchone()
    if row is None:
        raise NotFoundError("rule", rule_id)
    return _row_to_rule(row)


def active_rules(conn: psycopg.Connection[Any]) -> RuleSet:
    """The newest enabled version of each rule name."""
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            "SELECT DISTINCT ON (name) * FROM care_rules WHERE enabled ORDER BY name, version DESC"
        )
        rules = [_row_to_rule(row) for row in cur.fetchall()]
    return RuleSet(
        ticket_rules=tuple(r for r in rules if r.target == "ticket"),
        alert_rules=tuple(r for r in rules if r.target == "alert"),
    )


def create_rule_version(
    conn: psycopg.Connection[Any], spec: RuleSpec, *, actor: str, note: str | None = None
) -> StoredRule:
    """Store ``spec`` as the next version of its name (version 1 for a new name).

    Raises:
        RuleError: the name exists with a different target (a ticket rule cannot become an
            alert rule).
    """
    target = target_of(spec.definition)
    with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
        cur.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (_LOCK_KEY,))
        cur.execute(
            "SELECT version, target FROM care_rules WHERE name = %s ORDER BY version DESC LIMIT 1",
            (spec.name,),
        )
        latest = cur.fetchone()
        if latest is not None and latest["target"] != target:
            raise RuleError(
                f"rule {spec.name}",
                [f"definition.kind: {spec.name} raises {latest['target']}s, not {target}s"],
            )
        version = 1 if latest is None else latest["version"] + 1
        cur.execute(
            "INSERT INTO care_rules (name, version, target, definition, enabled, created_by)"
            " VALUES (%s, %s, %s, %s, %s, %s) RETURNING *",
            (
                spec.name,
                version,
                target,
                json.dumps(spec.definition.model_dump(mode="json")),
                spec.enabled,
                actor,
            ),
        )
        row = cur.fetchone()
        assert row is not None
        write_audit(
            conn,
            actor,
            "rule.version_created",
            "care_rule",
            row["id"],
            {"name": spec.name, "version": version, "note": note},
        )
    return _row_to_rule(row)


def set_rule_enabled(
    conn: psycopg.Connection[Any], rule_id: int, enabled: bool, *, actor: str
) -> StoredRule:
    """Enable or disable one version of a rule."""
    with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            "UPDATE care_rules SET enabled = %s WHERE id = %s RETURNING *", (enabled, rule_id)
        )
        row = cur.fetchone()
        if row is None:
            raise NotFoundError("rule", rule_id)
        write_audit(
            conn, actor, "rule.enabled" if enabled else "rule.disabled", "care_rule", rule_id, {}
        )
    return _row_to_rule(row)


def sync_rules(
    conn: psycopg.Connection[Any], specs: tuple[RuleSpec, ...], *, actor: str
) -> list[StoredRule]:
    """Store each spec whose definition differs from its newest version; returns the new ones."""
    newest = {rule.name: rule for rule in list_rules(conn)}
    created = []
    for spec in specs:
        current = newest.get(spec.name)
        if (
            current is not None
            and current.definition == spec.definition
            and current.enabled == spec.enabled
        ):
            continue
        created.append(create_rule_version(conn, spec, actor=actor, note="loaded from file"))
    return created


def ensure_rules(
    conn: psycopg.Connection[Any], specs: tuple[RuleSpec, ...], *, actor: str
) -> list[StoredRule]:
    """Load ``specs`` when the database holds no rule at all (first start); else nothing."""
    with conn.cursor() as cur:
        cur.execute("SELECT EXISTS (SELECT 1 FROM care_rules)")
        row = cur.fetchone()
    if row is not None and row[0]:
        return []
    return sync_rules(conn, specs, actor=actor)
