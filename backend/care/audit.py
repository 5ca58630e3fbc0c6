"""The audit trail of care actions (``audit_log``)."""

from __future__ import annotations

import json
from typing import Any

import psycopg


def write_audit(
    conn: psycopg.Connection[Any],
    actor: str,
    action: str,
    subject_kind: str,
    subject_id: int | str,
    detail: dict[str, Any],
) -> int:
    """Record one action in the caller's transaction; returns the audit row id."""
    with conn.cursor() as cur:
        cur.execute(
            "INSERT INTO audit_log (actor, action, subject_kind, subject_id, detail)"
            " VALUES (%s, %s, %s, %s, %s) RETURNING id",
            (actor, action, subject_kind, str(subject_id), json.dumps(detail, default=str)),
        )
        row = cur.fetchone()
    assert row is not None
    return int(row[0])
