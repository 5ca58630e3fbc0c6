"""Identity decisions in the database: resolve source records into one customer id.

Every decision is a row of ``account_identities``; a new decision supersedes the current one
(``superseded_at``), so the history of a record is kept whole and any decision can be
reverted. Statuses: ``matched`` (the record belongs to the account), ``review`` (a fuzzy
match below the automatic threshold, waiting for a person; the account is the candidate).
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from psycopg import Connection
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb
from pydantic import BaseModel

from backend.customers.errors import DecisionNotFoundError
from backend.customers.matching import AccountIndex, Candidate
from backend.customers.records import Source, SourceAccount, parse_record

Status = Literal["matched", "review", "rejected"]


@dataclass(frozen=True)
class Thresholds:
    """Fuzzy confidence at which a match is merged, and below which it is not even proposed."""

    match: float = 0.85
    review: float = 0.6


class Decision(BaseModel):
    """One identity decision as stored."""

    id: int
    source: Source
    source_id: str
    account_id: int | None
    method: Literal["exact", "fuzzy", "manual"]
    confidence: float
    status: Status
    evidence: dict[str, Any]
    decided_by: str
    decided_at: datetime
    superseded_at: datetime | None


_DECISION_COLUMNS = (
    "id, source, source_id, account_id, method, confidence, status, evidence, decided_by, "
    "decided_at, superseded_at"
)


def record_decision(
    conn: Connection[Any],
    record: tuple[Source, str],
    account_id: int | None,
    *,
    method: str,
    confidence: float,
    status: Status,
    evidence: dict[str, Any],
    actor: str,
) -> Decision:
    """Supersede the record's current decision (if any) with a new one."""
    source, source_id = record
    conn.execute(
        "UPDATE account_identities SET superseded_at = now() "
        "WHERE source = %s AND source_id = %s AND superseded_at IS NULL",
        (source, source_id),
    )
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            "INSERT INTO account_identities (source, source_id, account_id, method, confidence, "
            "status, evidence, decided_by) VALUES (%s, %s, %s, %s, %s, %s, %s, %s) "
            f"RETURNING {_DECISION_COLUMNS}",
            (source, source_id, account_id, method, confidence, status, Jsonb(evidence), actor),
        )
        row = cur.fetchone()
    assert row is not None
    return Decision.model_validate(row)


def create_account(conn: Connection[Any], record: SourceAccount) -> int:
    """A new account seeded from ``record`` (its fields are refreshed from every source later)."""
    row = conn.execute(
        "INSERT INTO accounts (customer_key, name) VALUES (%s, %s) RETURNING id",
        (f"cust-{secrets.token_hex(6)}", record.name),
    ).fetchone()
    assert row is not None
    return int(row[0])


def load_index(conn: Connection[Any]) -> AccountIndex:
    """Every matched source record of every (not erased) account, as an :class:`AccountIndex`."""
    index = AccountIndex()
    rows = conn.execute(
        "SELECT i.account_id, r.source, r.payload FROM account_identities i "
        "JOIN source_records r ON r.source = i.source AND r.source_id = i.source_id "
        "JOIN accounts a ON a.id = i.account_id "
        "WHERE i.superseded_at IS NULL AND i.status = 'matched' AND a.status <> 'erased' "
        "ORDER BY i.id"
    ).fetchall()
    for account_id, source, payload in rows:
        index.add(int(account_id), parse_record(source, payload))
    return index


def current_decision(conn: Connection[Any], source: Source, source_id: str) -> Decision | None:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            f"SELECT {_DECISION_COLUMNS} FROM account_identities "
            "WHERE source = %s AND source_id = %s AND superseded_at IS NULL",
            (source, source_id),
        )
        row = cur.fetchone()
    return Decision.model_validate(row) if row else None


def resolve_records(
    conn: Connection[Any],
    records: Sequence[SourceAccount],
    *,
    thresholds: Thresholds,
    actor: str,
    index: AccountIndex | None = None,
) -> list[Decision]:
    """Decide an account for each record that has no standing decision yet.

    Records with a current ``matched`` or manual decision keep it (a person's word and an
    earlier merge are not undone by a re-import); the others are matched, queued for
    review, or given a new account.
    """
    index = index if index is not None else load_index(conn)
    decisions: list[Decision] = []
    for record in records:
        existing = current_decision(conn, record.source, record.source_id)
        if existing is not None and (existing.status == "matched" or existing.method == "manual"):
            decisions.append(existing)
            continue
        candidate = index.best(record)
        decision = _decide(conn, record, candidate, thresholds, actor)
        if decision.status == "matched" and decision.account_id is not None:
            index.add(decision.account_id, record)
        decisions.append(decision)
    return decisions


def _decide(
    conn: Connection[Any],
    record: SourceAccount,
    candidate: Candidate | None,
    thresholds: Thresholds,
    actor: str,
) -> Decision:
    key = (record.source, record.source_id)
    if candidate is not None and (
        candidate.method == "exact" or candidate.confidence >= thresholds.match
    ):
        return record_decision(
            conn,
            key,
            candidate.account_id,
            method=candidate.method,
            confidence=candidate.confidence,
            status="matched",
            evidence=candidate.evidence,
            actor=actor,
        )
    if candidate is not None and candidate.confidence >= thresholds.review:
        return record_decision(
            conn,
            key,
            candidate.account_id,
            method="fuzzy",
            confidence=candidate.confidence,
            status="review",
            evidence=candidate.evidence,
            actor=actor,
        )
    evidence: dict[str, Any] = {"new_account": True, "reason": "no similar account"}
    if candidate is not None:
        evidence = {
            "new_account": True,
            "reason": "closest account below review threshold",
            **candidate.evidence,
        }
        evidence["closest_account_id"] = candidate.account_id
    return record_decision(
        conn,
        key,
        create_account(conn, record),
        method="exact",
        confidence=1.0,
        status="matched",
        evidence=evidence,
        actor=actor,
    )


def review_queue(conn: Connection[Any], limit: int = 100) -> list[Decision]:
    """Current decisions waiting for a person, oldest first."""
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            f"SELECT {_DECISION_COLUMNS} FROM account_identities "
            "WHERE superseded_at IS NULL AND status = 'review' ORDER BY decided_at, id LIMIT %s",
            (limit,),
        )
        return [Decision.model_validate(row) for row in cur.fetchall()]


def _current_by_id(conn: Connection[Any], decision_id: int) -> Decision:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            f"SELECT {_DECISION_COLUMNS} FROM account_identities "
            "WHERE id = %s AND superseded_at IS NULL",
            (decision_id,),
        )
        row = cur.fetchone()
    if row is None:
        raise DecisionNotFoundError(decision_id)
    return Decision.model_validate(row)


def accept(conn: Connection[Any], decision_id: int, *, actor: str) -> Decision:
    """A person confirms the proposed account."""
    proposed = _current_by_id(conn, decision_id)
    return record_decision(
        conn,
        (proposed.source, proposed.source_id),
        proposed.account_id,
        method="manual",
        confidence=1.0,
        status="matched",
        evidence={"accepted_decision_id": proposed.id, "proposed": proposed.evidence},
        actor=actor,
    )


def reject(conn: Connection[Any], decision_id: int, *, actor: str) -> Decision:
    """A person refuses the proposed account: the record gets an account of its own."""
    proposed = _current_by_id(conn, decision_id)
    record = source_record(conn, proposed.source, proposed.source_id)
    return record_decision(
        conn,
        (proposed.source, proposed.source_id),
        create_account(conn, record),
        method="manual",
        confidence=1.0,
        status="matched",
        evidence={"rejected_decision_id": proposed.id, "rejected_account_id": proposed.account_id},
        actor=actor,
    )


def revert(conn: Connection[Any], decision_id: int, *, actor: str) -> Decision:
    """Undo a current decision: the one it superseded becomes current again (as a new row)."""
    current = _current_by_id(conn, decision_id)
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            f"SELECT {_DECISION_COLUMNS} FROM account_identities "
            "WHERE source = %s AND source_id = %s AND id < %s ORDER BY id DESC LIMIT 1",
            (current.source, current.source_id, current.id),
        )
        row = cur.fetchone()
    if row is None:
        raise DecisionNotFoundError(decision_id)
    previous = Decision.model_validate(row)
    return record_decision(
        conn,
        (previous.source, previous.source_id),
        previous.account_id,
        method="manual",
        confidence=previous.confidence,
        status=previous.status,
        evidence={"reverted_decision_id": current.id, "restored_decision_id": previous.id},
        actor=actor,
    )


def source_record(conn: Connection[Any], source: Source, source_id: str) -> SourceAccount:
    row = conn.execute(
        "SELECT payload FROM source_records WHERE source = %s AND source_id = %s",
        (source, source_id),
    ).fetchone()
    if row is None:
        raise LookupError(f"no {source} record {source_id}")
    return parse_record(source, row[0])
