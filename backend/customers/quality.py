"""Data-quality report: conflicting fields between sources, missing values, duplicates.

Each report is stored in ``data_quality_snapshots`` so that counts can be followed over
time; :func:`take_snapshot` returns the new report with the change since the previous one.
Conflicts compare each account's primary record per source (see ``golden.primary_first``).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable
from datetime import datetime
from typing import Any

from psycopg import Connection
from psycopg.types.json import Jsonb
from pydantic import BaseModel

from backend.customers.golden import primary_first
from backend.customers.normalise import strip_legal_suffix
from backend.customers.records import SOURCES, Source, SourceAccount, parse_record


def _contract_value(record: SourceAccount) -> str:
    if record.term_value is not None:
        return f"{record.term_value:.2f}"
    if record.annual_value is not None and record.term_months:
        return f"{record.annual_value * record.term_months / 12:.2f}"
    return ""


def _values_differ(field: str, left: str, right: str) -> bool:
    if field == "contract_value":
        a, b = float(left), float(right)
        return abs(a - b) > 0.01 * max(abs(a), abs(b), 1.0)
    return left != right


# field -> the two sources compared and how each states the field.
FIELD_CHECKS: dict[str, tuple[Source, Source, Callable[[SourceAccount], str]]] = {
    "industry": ("crm", "service", lambda r: r.industry),
    "country": ("crm", "erp", lambda r: r.country),
    "region": ("crm", "service", lambda r: r.region),
    "csm": ("crm", "service", lambda r: r.csm),
    "renewal_date": ("crm", "erp", lambda r: r.renewal_date.isoformat() if r.renewal_date else ""),
    "contract_value": ("crm", "erp", _contract_value),
    "name": ("crm", "erp", lambda r: strip_legal_suffix(r.name)),
}


class Conflict(BaseModel):
    account_id: int
    field: str
    sources: tuple[Source, Source]
    source_ids: tuple[str, str]


class QualityReport(BaseModel):
    taken_at: datetime | None = None
    records: dict[str, int]
    accounts: int
    conflicting_accounts: int
    conflicts_by_field: dict[str, int]
    duplicates_by_source: dict[str, int]
    missing_by_field: dict[str, int]
    in_review: int
    conflicts: list[Conflict]
    change: dict[str, int] = {}


def build_report(conn: Connection[Any]) -> QualityReport:
    """The report over every current source record (nothing is stored)."""
    rows = conn.execute(
        "SELECT r.source, r.source_id, r.payload, i.account_id, i.status "
        "FROM source_records r LEFT JOIN account_identities i ON i.source = r.source "
        "AND i.source_id = r.source_id AND i.superseded_at IS NULL "
        "LEFT JOIN accounts a ON a.id = i.account_id "
        "WHERE a.status IS DISTINCT FROM 'erased'"
    ).fetchall()
    records: Counter[str] = Counter()
    missing: Counter[str] = Counter()
    in_review = 0
    by_account: dict[int, list[SourceAccount]] = defaultdict(list)
    for source, _source_id, payload, account_id, status in rows:
        records[source] += 1
        for key, value in payload.items():
            if value is None or (isinstance(value, str) and value.strip() == ""):
                missing[f"{source}.{key}"] += 1
        if status == "review":
            in_review += 1
        if status == "matched" and account_id is not None:
            by_account[int(account_id)].append(parse_record(source, payload))
    duplicates: Counter[str] = Counter()
    conflicts: list[Conflict] = []
    for account_id, account_records in sorted(by_account.items()):
        primary: dict[str, SourceAccount] = {}
        for record in primary_first(account_records):
            if record.source in primary:
                duplicates[record.source] += 1
            else:
                primary[record.source] = record
        for field, (left, right, value_of) in FIELD_CHECKS.items():
            if left not in primary or right not in primary:
                continue
            a, b = value_of(primary[left]), value_of(primary[right])
            if a and b and _values_differ(field, a, b):
                conflicts.append(
                    Conflict(
                        account_id=account_id,
                        field=field,
                        sources=(left, right),
                        source_ids=(primary[left].source_id, primary[right].source_id),
                    )
                )
    by_field = Counter(c.field for c in conflicts)
    return QualityReport(
        records={s: records.get(s, 0) for s in SOURCES},
        accounts=len(by_account),
        conflicting_accounts=len({c.account_id for c in conflicts}),
        conflicts_by_field=dict(sorted(by_field.items())),
        duplicates_by_source={s: duplicates.get(s, 0) for s in SOURCES},
        missing_by_field=dict(sorted(missing.items())),
        in_review=in_review,
        conflicts=conflicts,
    )


def _totals(report: QualityReport) -> dict[str, int]:
    return {
        "records": sum(report.records.values()),
        "accounts": report.accounts,
        "conflicting_accounts": report.conflicting_accounts,
        "conflicts": len(report.conflicts),
        "duplicates": sum(report.duplicates_by_source.values()),
        "missing": sum(report.missing_by_field.values()),
        "in_review": report.in_review,
    }


def take_snapshot(conn: Connection[Any]) -> QualityReport:
    """Build the report, store its counts (not the values) and compare with the last one."""
    report = build_report(conn)
    previous = conn.execute(
        "SELECT report FROM data_quality_snapshots ORDER BY taken_at DESC, id DESC LIMIT 1"
    ).fetchone()
    totals = _totals(report)
    if previous is not None:
        before = previous[0].get("totals", {})
        report.change = {k: v - int(before.get(k, 0)) for k, v in totals.items()}
    stored = report.model_dump(mode="json", exclude={"conflicts", "change", "taken_at"})
    stored["totals"] = totals
    row = conn.execute(
        "INSERT INTO data_quality_snapshots (report) VALUES (%s) RETURNING taken_at",
        (Jsonb(stored),),
    ).fetchone()
    assert row is not None
    report.taken_at = row[0]
    return report


def history(conn: Connection[Any], limit: int = 30) -> list[tuple[datetime, dict[str, int]]]:
    """Totals of the last ``limit`` snapshots, newest first."""
    rows = conn.execute(
        "SELECT taken_at, report FROM data_quality_snapshots ORDER BY taken_at DESC LIMIT %s",
        (limit,),
    ).fetchall()
    return [(taken_at, dict(report.get("totals", {}))) for taken_at, report in rows]
