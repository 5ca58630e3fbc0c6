"""The golden record: an account's fields and contract, refreshed from its source records.

Per field the first non-empty value wins, in source order CRM, ERP, service desk; within a
source the *primary* record (the most complete, then the latest renewal date) comes first,
so a stale duplicate never overrides the record in use.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date, timedelta
from typing import Any

from psycopg import Connection

from backend.customers.normalise import domain_key, strip_legal_suffix
from backend.customers.records import SOURCES, SourceAccount, parse_record


def primary_first(records: Iterable[SourceAccount]) -> list[SourceAccount]:
    """Records of one account in golden order: source priority, then the primary record."""

    def filled(record: SourceAccount) -> int:
        return sum(1 for value in record.model_dump().values() if value not in ("", None))

    return sorted(
        records,
        key=lambda r: (
            SOURCES.index(r.source),
            -filled(r),
            -(r.renewal_date.toordinal() if r.renewal_date else 0),
            r.source_id,
        ),
    )


def account_records(conn: Connection[Any], account_id: int) -> list[SourceAccount]:
    """The account's matched source records, golden order."""
    rows = conn.execute(
        "SELECT r.source, r.payload FROM account_identities i "
        "JOIN source_records r ON r.source = i.source AND r.source_id = i.source_id "
        "WHERE i.account_id = %s AND i.superseded_at IS NULL AND i.status = 'matched'",
        (account_id,),
    ).fetchall()
    return primary_first(parse_record(source, payload) for source, payload in rows)


def _first(records: Sequence[SourceAccount], field: str) -> str:
    for record in records:
        value = getattr(record, field)
        if value:
            return str(value)
    return ""


def refresh_account(conn: Connection[Any], account_id: int) -> None:
    """Rewrite the account's fields and imported contract from its source records."""
    records = account_records(conn, account_id)
    if not records:
        return
    crm_or_erp = [r for r in records if r.source != "service"] or records
    name = strip_legal_suffix(crm_or_erp[0].name) or crm_or_erp[0].name
    csm = _first(records, "csm")
    csm_row = (
        conn.execute(
            "SELECT min(id), count(*) FROM users WHERE name = %s AND role IN ('csm', 'admin')",
            (csm,),
        ).fetchone()
        if csm
        else None
    )
    csm_user = csm_row[0] if csm_row is not None and csm_row[1] == 1 else None
    conn.execute(
        "UPDATE accounts SET name = %s, domain = NULLIF(%s, ''), industry = NULLIF(%s, ''), "
        "size_band = NULLIF(%s, ''), region = NULLIF(%s, ''), country = NULLIF(%s, ''), "
        "address = NULLIF(%s, ''), csm_user_id = COALESCE(%s, csm_user_id), updated_at = now() "
        "WHERE id = %s AND status <> 'erased'",
        (
            name,
            domain_key(_first(records, "domain")),
            _first(records, "industry"),
            _first(records, "size_band"),
            _first(records, "region"),
            _first(records, "country"),
            _first(records, "address"),
            csm_user,
            account_id,
        ),
    )
    _refresh_contract(conn, account_id, records)


def _refresh_contract(
    conn: Connection[Any], account_id: int, records: Sequence[SourceAccount]
) -> None:
    for record in records:
        if record.renewal_date is None or record.source == "service":
            continue
        term = record.term_months or 12
        if record.annual_value is not None:
            annual = record.annual_value
        elif record.term_value is not None:
            annual = record.term_value * 12 / term
        else:
            continue
        end = record.renewal_date
        start = record.start_date or (end - timedelta(days=round(term * 30.44)))
        start = min(start, end)
        _upsert_contract(
            conn, account_id, f"import:{record.source}:{record.source_id}", annual, start, end
        )
        return


def _upsert_contract(
    conn: Connection[Any], account_id: int, ref: str, annual: float, start: date, end: date
) -> None:
    updated = conn.execute(
        "UPDATE contracts SET source_ref = %s, annual_value = %s, start_date = %s, "
        "end_date = %s, renewal_date = %s WHERE account_id = %s AND source_ref LIKE 'import:%%' "
        "RETURNING id",
        (ref, round(annual, 2), start, end, end, account_id),
    ).fetchall()
    if not updated:
        conn.execute(
            "INSERT INTO contracts (account_id, source_ref, annual_value, start_date, end_date, "
            "renewal_date) VALUES (%s, %s, %s, %s, %s, %s)",
            (account_id, ref, round(annual, 2), start, end, end),
        )
